/**
 * The agent's durable state, on top of DurableStore (snapshot + fsynced log):
 *
 *   snapshot = { kb, relation declarations, link store contents }
 *   records  = 'c' one per committed run: the run's immer patches
 *              'l' link store changes (records put, links deleted; written
 *                  by older versions, and by the deletes that retire them)
 *              'd' one relation declaration (relate / unrelate) learned
 *
 * Invariants:
 *   - A run's commit record is appended and fsynced inside the engine's
 *     `onCommit`, so the engine applies the run (and the relation manager
 *     acks what it brought, or sends what it queued) only once it is
 *     durable. A relation message costs one record on each side: the
 *     commit of the run that queued it (its link numbering and outbox are
 *     in the knowledge base, `@out/<relation>`) and the commit of the run
 *     that applied it (packages/relations, link-sender.ts).
 *   - The link store holds only what older versions kept there: the
 *     relation manager moves it into the knowledge base on start and
 *     deletes it (link-store.ts). It is synchronous in memory; each change
 *     is appended at once.
 *   - Records are replayed in append order onto the snapshot, which holds
 *     the effect of every record before it (DurableStore's contract); a torn
 *     last record was never acknowledged and is dropped by DurableStore.
 *   - A snapshot is taken after every `snapshotEvery` records, from inside
 *     `commitRun` with the run's new knowledge base, so it covers the commit
 *     record appended just before it.
 */
import type { Patch } from 'immer';
import { EMPTY_KNOWLEDGE_BASE, replayPatches, reviveKnowledgeBase, type KnowledgeBase, type RunCommit } from '@rhizome/engine';
import type { LinkRecord, LinkStore } from '@rhizome/relations';
import { AgentError } from '../errors';
import { DurableStore, type Recovery } from '../persistence/durable-store';

/** A relation between two service endpoints, as the directory spreads it. */
export interface Declaration {
  /** Relation id, the same on every agent. */
  readonly id: string;
  readonly a: { readonly service: string; readonly endpoint: string };
  readonly b: { readonly service: string; readonly endpoint: string };
  /** True for an `unrelate` (a tombstone: it must win over the older `relate`). */
  readonly removed: boolean;
  /** Last-writer-wins order: wall-clock ms of the declaration, then origin. */
  readonly stamp: number;
  /** Unit that declared it. */
  readonly origin: string;
}

export interface StateSnapshot {
  readonly v: 1;
  readonly kb: KnowledgeBase;
  readonly declarations: readonly Declaration[];
  readonly links: readonly (readonly [string, LinkRecord])[];
}

export type StateRecord =
  | { readonly t: 'c'; readonly p: readonly Patch[] }
  | { readonly t: 'l'; readonly put?: readonly (readonly [string, LinkRecord])[]; readonly del?: readonly string[] }
  | { readonly t: 'd'; readonly d: Declaration };

export interface DurableStateOptions {
  readonly dir: string;
  readonly fsync?: boolean;
  readonly snapshotEvery?: number;
  /** Called when a background append (link store) fails: the agent must stop. */
  readonly onFailure?: (err: unknown) => void;
}

export const DEFAULT_DURABLE_STATE_OPTIONS = Object.freeze({
  fsync: true,
  // See DEFAULT_AGENT_CONFIG.snapshotEvery.
  snapshotEvery: 500,
});

/**
 * The engine's maxCommitsInFlight over this state: commitRun appends in
 * order, so later runs may execute while earlier fsyncs are in flight. The
 * bound is what absorbs a slow fdatasync: the engine stalls once this many
 * commits wait, so throughput is at most this many runs per fsync. With
 * fdatasync at 2-5 ms (a busy shared disk), the event loop idled half the
 * time at 256 and about a tenth at 1024 (bench/relations). A commit waiting
 * holds its report and patches (a few KB; a few MB at the bound) and
 * nothing leaves for peers before it is durable.
 */
export const GROUP_COMMIT_MAX_IN_FLIGHT = 1024;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function parseDeclaration(v: unknown): Declaration {
  if (
    !isObject(v) ||
    typeof v['id'] !== 'string' ||
    !isObject(v['a']) ||
    !isObject(v['b']) ||
    typeof v['removed'] !== 'boolean' ||
    typeof v['stamp'] !== 'number' ||
    typeof v['origin'] !== 'string'
  ) {
    throw new Error('not a relation declaration');
  }
  return v as unknown as Declaration;
}

export function parseStateSnapshot(v: unknown): StateSnapshot {
  if (!isObject(v) || v['v'] !== 1) throw new Error('not an agent state snapshot (format 1)');
  const kb = reviveKnowledgeBase(v['kb']);
  if (!Array.isArray(v['declarations']) || !Array.isArray(v['links'])) throw new Error('snapshot lacks declarations or links');
  v['declarations'].forEach(parseDeclaration);
  for (const l of v['links']) if (!Array.isArray(l) || typeof l[0] !== 'string' || !isObject(l[1])) throw new Error('bad link entry');
  return { ...(v as unknown as StateSnapshot), kb };
}

export function parseStateRecord(v: unknown): StateRecord {
  if (!isObject(v)) throw new Error('a record must be an object');
  switch (v['t']) {
    case 'c':
      if (!Array.isArray(v['p'])) throw new Error('commit record without patches');
      return v as unknown as StateRecord;
    case 'l':
      return v as unknown as StateRecord;
    case 'd':
      parseDeclaration(v['d']);
      return v as unknown as StateRecord;
    default:
      throw new Error(`unknown record type ${JSON.stringify(v['t'])}`);
  }
}

/** LWW order of two declarations of the same relation: positive when `a` wins. */
export function compareDeclarations(a: Declaration, b: Declaration): number {
  if (a.stamp !== b.stamp) return a.stamp - b.stamp;
  if (a.origin !== b.origin) return a.origin < b.origin ? -1 : 1;
  return (a.removed ? 1 : 0) - (b.removed ? 1 : 0);
}

export class DurableState {
  /** The knowledge base as recovered (the engine owns it from then on). */
  readonly recoveredKb: KnowledgeBase;
  readonly recovery: Recovery;
  readonly linkStore: LinkStore;
  private readonly store: DurableStore<StateSnapshot, StateRecord>;
  private readonly decls: Map<string, Declaration>;
  private readonly links: Map<string, LinkRecord>;
  private readonly snapshotEvery: number;
  private readonly onFailure: (err: unknown) => void;
  private lastAppend: Promise<void> = Promise.resolve();
  private sinceSnapshot: number;
  private failed: unknown;
  /** Commit records appended, for tests and status. */
  commits = 0;

  private constructor(
    store: DurableStore<StateSnapshot, StateRecord>,
    kb: KnowledgeBase,
    decls: Map<string, Declaration>,
    links: Map<string, LinkRecord>,
    recovery: Recovery,
    options: DurableStateOptions,
  ) {
    this.store = store;
    this.recoveredKb = kb;
    this.decls = decls;
    this.links = links;
    this.recovery = recovery;
    this.sinceSnapshot = recovery.recordsReplayed;
    this.snapshotEvery = options.snapshotEvery ?? DEFAULT_DURABLE_STATE_OPTIONS.snapshotEvery;
    this.onFailure = options.onFailure ?? (() => undefined);
    const self = this;
    this.linkStore = {
      get(id) {
        const r = self.links.get(id);
        return r === undefined ? undefined : structuredClone(r);
      },
      put(id, record) {
        const copy = structuredClone(record);
        self.links.set(id, copy);
        self.appendBackground({ t: 'l', put: [[id, copy]] });
      },
      delete(id) {
        if (!self.links.delete(id)) return;
        self.appendBackground({ t: 'l', del: [id] });
      },
      keys() {
        return [...self.links.keys()].sort();
      },
    };
  }

  /** Locks `dir`, loads the snapshot and replays the log. Throws StoreCorruptError (file, offset) on damage a crash cannot cause. */
  static async open(options: DurableStateOptions): Promise<DurableState> {
    const opened = await DurableStore.open<StateSnapshot, StateRecord>({
      dir: options.dir,
      fsync: options.fsync ?? DEFAULT_DURABLE_STATE_OPTIONS.fsync,
      parseSnapshot: parseStateSnapshot,
      parseRecord: parseStateRecord,
    });
    let kb: KnowledgeBase = opened.snapshot?.kb ?? EMPTY_KNOWLEDGE_BASE;
    const decls = new Map<string, Declaration>((opened.snapshot?.declarations ?? []).map((d) => [d.id, d]));
    const links = new Map<string, LinkRecord>((opened.snapshot?.links ?? []).map(([id, r]) => [id, r]));
    let index = 0;
    try {
      for (const rec of opened.records) {
        index++;
        if (rec.t === 'c') kb = replayPatches(kb, rec.p as Patch[]);
        else if (rec.t === 'l') {
          for (const [id, r] of rec.put ?? []) links.set(id, r);
          for (const id of rec.del ?? []) links.delete(id);
        } else {
          const old = decls.get(rec.d.id);
          if (!old || compareDeclarations(rec.d, old) > 0) decls.set(rec.d.id, rec.d);
        }
      }
    } catch (err) {
      await opened.store.close();
      throw new AgentError(
        'AGENT_ERR_STORE_CORRUPT',
        `state in ${options.dir}: record ${index} of the log does not apply to the snapshot (${(err as Error).message}); nothing was changed on disk`,
        { cause: err },
      );
    }
    return new DurableState(opened.store, kb, decls, links, opened.recovery, options);
  }

  /**
   * The engine's onCommit: appends the run's patches and resolves when they
   * are durable. Called once per run (the hot path of durable runs): one
   * promise, shared by the whole group-commit batch, plus one reaction.
   */
  commitRun(commit: RunCommit): Promise<void> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    const done = this.appendCommit(commit);
    // Runs before the engine's own reaction (registered after this one).
    done.then(undefined, this.commitFailed);
    return done;
  }

  private readonly commitFailed = (err: unknown): void => {
    // The store refuses further writes now (DurableStore): the agent must stop.
    if (this.failed === undefined && (err as { code?: string }).code !== 'AGENT_ERR_STORE_RECORD_TOO_LARGE') {
      this.failed = err;
      this.onFailure(err);
    }
  };

  /**
   * Appends the commit record and, when one is due, the snapshot, both before
   * returning to the caller: the engine may hand over the next commit while
   * this one's fsync is in flight (group commit), and a snapshot must hold
   * exactly the records appended before it (DurableStore's contract), so
   * it is requested right after this commit's record, with this commit's
   * knowledge base and the link records and declarations appended so far.
   */
  private appendCommit(commit: RunCommit): Promise<void> {
    this.commits++;
    const done = this.store.append({ t: 'c', p: commit.patches });
    this.sinceSnapshot++;
    if (this.sinceSnapshot < this.snapshotEvery) {
      // barrier() handles a rejection; commitRun's caller is told too.
      this.lastAppend = done;
      return done;
    }
    this.sinceSnapshot = 0;
    const last = this.store.snapshot({ v: 1, kb: commit.kb, declarations: [...this.decls.values()], links: [...this.links.entries()] });
    this.lastAppend = last;
    return Promise.all([done, last]).then(() => undefined);
  }

  /** Records a declaration if it wins over the one known; resolves true (once durable) when it changed anything. */
  async putDeclaration(d: Declaration): Promise<boolean> {
    const old = this.decls.get(d.id);
    if (old && compareDeclarations(d, old) <= 0) return false;
    this.decls.set(d.id, d);
    const done = this.store.append({ t: 'd', d });
    this.lastAppend = done.catch(() => undefined);
    await done;
    this.sinceSnapshot++;
    return true;
  }

  declarations(): Declaration[] {
    return [...this.decls.values()].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  }

  /** Resolves when every record appended so far is durable. */
  barrier(): Promise<void> {
    // lastAppend may have rejected (a record refused as too large leaves the
    // store usable): what matters is whether the store has failed.
    const check = (): void => {
      if (this.failed !== undefined) throw this.failed;
    };
    return this.lastAppend.then(check, check);
  }

  get logRecords(): number {
    return this.store.logRecords;
  }

  get generation(): number {
    return this.store.currentGeneration;
  }

  close(): Promise<void> {
    return this.store.close();
  }

  private appendBackground(rec: StateRecord): void {
    const done = this.store.append(rec);
    this.sinceSnapshot++;
    this.lastAppend = done.catch((err: unknown) => {
      if (this.failed === undefined) {
        this.failed = err;
        this.onFailure(err);
      }
    });
  }
}
