/**
 * Key management across the live cluster, with `serf keys` semantics.
 *
 * `list`, `install KEY`, `use KEY` and `remove KEY` are internal queries
 * (reserved names under `_gossip:keys:`), gossiped to every member like any
 * query and answered by each member directly: it applies the operation to
 * its own keyring and says whether that worked. The requester is a member
 * too and applies it first. The result counts the live members asked, the
 * responses, each member's error, and the members that did not answer in
 * time (they missed the operation: rerun it, or remove them); `list` also
 * counts, per key, how many members hold it and use it as primary.
 *
 * Rotation, as in Serf: `install(new)`, check every member answered;
 * `use(new)`; `remove(old)`. A member that missed the install cannot read
 * frames sealed with the new key once the others `use` it, so check the
 * result of each step before the next. The primary key cannot be removed
 * (refused locally before anything is sent, and by every member).
 *
 * The queries travel in frames sealed with the current primary key, so
 * keys never cross the network in the clear; without a keyring nothing
 * here works (GOSSIP_ERR_NO_KEYRING). Each successful change emits
 * `keyring-change` on that member's node, for its owner to persist.
 */
import { GossipError } from './errors';
import { Keyring, KeyringError } from './keyring';
import type { QueryHandle, QueryOptions } from './queries';

/** Query names starting with this are the node's own; the public query()/onQuery() refuse them. */
export const RESERVED_QUERY_PREFIX = '_gossip:';

export type KeyOperation = 'list' | 'install' | 'use' | 'remove';

const QUERY_NAME: Readonly<Record<KeyOperation, string>> = Object.freeze({
  list: `${RESERVED_QUERY_PREFIX}keys:list`,
  install: `${RESERVED_QUERY_PREFIX}keys:install`,
  use: `${RESERVED_QUERY_PREFIX}keys:use`,
  remove: `${RESERVED_QUERY_PREFIX}keys:remove`,
});

/** What the cluster answered to one key operation. */
export interface KeyResponse {
  readonly operation: KeyOperation;
  /** Live members (alive or suspect, this node included) when the operation was sent. */
  readonly members: number;
  /** Members that answered (successfully or not). */
  readonly responses: number;
  /** Members that answered with an error, and what it was. */
  readonly errors: Readonly<Record<string, string>>;
  /** Live members that did not answer before the timeout: they missed this operation. */
  readonly missing: readonly string[];
  /** list: for each key (base64), how many members hold it. Empty for other operations. */
  readonly keys: Readonly<Record<string, number>>;
  /** list: for each key, how many members use it as their primary. */
  readonly primaryKeys: Readonly<Record<string, number>>;
  /** Every live member answered, none with an error. */
  readonly ok: boolean;
}

/** A keyring change on this member (its owner persists `keys`, the primary first). */
export interface KeyringChange {
  readonly operation: Exclude<KeyOperation, 'list'>;
  /** The key the operation named (base64). */
  readonly key: string;
  /** The whole keyring after the change, base64, the primary first. */
  readonly keys: readonly string[];
}

export interface KeyOperationOptions {
  /** Milliseconds to wait for answers; default: the query timeout for the cluster size. */
  timeout?: number;
}

/** What each member answers. */
interface KeyAnswer {
  ok: boolean;
  error?: string;
  /** list: installed keys, the primary first (possibly cut to fit a response). */
  keys?: string[];
}

/** Keys listed per answer: 16 base64 keys (45 bytes each encoded) fit a 1 KiB response. */
const MAX_LISTED_KEYS = 16;

/** @internal what the key manager needs from its node. */
export interface KeyManagerDeps {
  readonly keyring: Keyring | undefined;
  /** This node's name. */
  readonly name: string;
  /** Names of live members (alive or suspect), this node included. */
  liveMembers(): string[];
  query(name: string, payload: unknown, opts: QueryOptions): QueryHandle;
  respond(name: string, fn: (q: { payload: unknown; from: string }) => unknown): () => void;
  changed(change: KeyringChange): void;
}

export class KeyManager {
  constructor(private readonly d: KeyManagerDeps) {
    for (const op of ['list', 'install', 'use', 'remove'] as const) {
      // Our own use/remove is applied after the others answered (run()), so their answers stay readable.
      d.respond(QUERY_NAME[op], (q) => (q.from === d.name && deferred(op) ? undefined : this.apply(op, q.payload)));
    }
  }

  /** Ask every live member for its keys. */
  list(options: KeyOperationOptions = {}): Promise<KeyResponse> {
    return this.run('list', undefined, options);
  }

  /** Install `key` (base64) on every live member, for decryption; `use` it once all have it. */
  install(key: string, options: KeyOperationOptions = {}): Promise<KeyResponse> {
    return this.run('install', key, options);
  }

  /** Make `key` the primary (used to seal every frame) on every live member. */
  use(key: string, options: KeyOperationOptions = {}): Promise<KeyResponse> {
    return this.run('use', key, options);
  }

  /**
   * Remove `key` from every live member.
   * @throws KeyringError GOSSIP_ERR_REMOVE_PRIMARY (rejected promise) if it is this node's primary key.
   */
  remove(key: string, options: KeyOperationOptions = {}): Promise<KeyResponse> {
    return this.run('remove', key, options);
  }

  private async run(op: KeyOperation, key: string | undefined, options: KeyOperationOptions): Promise<KeyResponse> {
    const keyring = this.d.keyring;
    if (keyring === undefined) {
      throw new GossipError(
        'GOSSIP_ERR_NO_KEYRING',
        `keys ${op}: this cluster has no keyring (gossip is not encrypted); start every member with a keyring first`,
      );
    }
    let canonical: string | undefined;
    if (key !== undefined) {
      canonical = canonicalKey(key); // throws KeyringError GOSSIP_ERR_KEY_INVALID before anything is sent
      if (op === 'remove' && keyring.primary() === canonical) {
        throw new KeyringError('GOSSIP_ERR_REMOVE_PRIMARY', 'cannot remove the primary key; `use` another installed key first, then remove this one');
      }
    }
    const expected = this.d.liveMembers();
    const handle = this.d.query(QUERY_NAME[op], canonical === undefined ? null : { key: canonical }, options.timeout === undefined ? {} : { timeout: options.timeout });
    const waiting = new Set(expected);
    if (deferred(op)) waiting.delete(this.d.name);
    handle.onResponse((from) => {
      waiting.delete(from);
      if (waiting.size === 0) handle.close();
    });
    if (waiting.size === 0) handle.close();
    const collected = await handle.done;
    let responses = collected.responses;
    if (deferred(op)) {
      responses = [...responses.filter((r) => r.from !== this.d.name), { from: this.d.name, payload: this.apply(op, { key: canonical }) }];
    }
    const result = { responses };
    const errors: Record<string, string> = {};
    const keys: Record<string, number> = {};
    const primaryKeys: Record<string, number> = {};
    for (const { from, payload } of result.responses) {
      const answer = parseAnswer(payload);
      if (!answer.ok) errors[from] = answer.error ?? 'unknown error';
      if (op === 'list' && answer.keys) {
        for (const k of answer.keys) keys[k] = (keys[k] ?? 0) + 1;
        const primary = answer.keys[0];
        if (primary !== undefined) primaryKeys[primary] = (primaryKeys[primary] ?? 0) + 1;
      }
    }
    const answered = new Set(result.responses.map((r) => r.from));
    const missing = expected.filter((m) => !answered.has(m)).sort();
    return {
      operation: op,
      members: expected.length,
      responses: result.responses.length,
      errors,
      missing,
      keys,
      primaryKeys,
      ok: missing.length === 0 && Object.keys(errors).length === 0,
    };
  }

  /** One member's side: apply the operation to our keyring and say how it went. */
  private apply(op: KeyOperation, payload: unknown): KeyAnswer {
    const keyring = this.d.keyring;
    if (keyring === undefined) return { ok: false, error: 'this member has no keyring' };
    if (op === 'list') {
      const all = keyring.list();
      return all.length > MAX_LISTED_KEYS ? { ok: true, keys: all.slice(0, MAX_LISTED_KEYS) } : { ok: true, keys: all };
    }
    const raw = typeof payload === 'object' && payload !== null ? (payload as { key?: unknown }).key : undefined;
    if (typeof raw !== 'string') return { ok: false, error: 'no key in the request' };
    try {
      const before = keyring.list().join(',');
      let key: string;
      if (op === 'install') {
        key = canonicalKey(raw);
        keyring.install(key);
      } else if (op === 'use') {
        key = canonicalKey(raw);
        keyring.use(key);
      } else {
        key = canonicalKey(raw);
        if (!keyring.remove(key)) return { ok: true };
      }
      const keys = keyring.list();
      if (keys.join(',') !== before) this.d.changed({ operation: op, key, keys });
      return { ok: true };
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
  }
}

/**
 * Operations the requester applies to itself only once the others have
 * answered: after `use` it would seal the query with a key a member may
 * lack, after `remove` it could no longer read the answer of a member that
 * still seals with the removed key; either way that member's answer (its
 * error) would be lost.
 */
function deferred(op: KeyOperation): boolean {
  return op === 'use' || op === 'remove';
}

/** The base64 form of a key as the keyring lists it; throws KeyringError GOSSIP_ERR_KEY_INVALID. */
function canonicalKey(key: string): string {
  // A throwaway keyring parses and normalises exactly as the real one does.
  return new Keyring(key).primary();
}

function parseAnswer(payload: unknown): KeyAnswer {
  if (typeof payload !== 'object' || payload === null) return { ok: false, error: 'unreadable answer' };
  const p = payload as Record<string, unknown>;
  const answer: KeyAnswer = { ok: p.ok === true };
  if (typeof p.error === 'string') answer.error = p.error.slice(0, 512);
  if (Array.isArray(p.keys)) answer.keys = p.keys.filter((k): k is string => typeof k === 'string').slice(0, MAX_LISTED_KEYS);
  return answer;
}
