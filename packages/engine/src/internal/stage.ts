/**
 * A run's staging area: every change a run makes is recorded here, on top of
 * the committed (frozen) knowledge base, which is never touched. Commit
 * applies the stage to the base with immer, producing the new snapshot and
 * its patches (sharded-commit.ts); rollback simply drops the stage.
 *
 * Reads never hand out immer drafts: values come either from the frozen base
 * or from the stage, where they are frozen copies. A handler can therefore
 * keep a value it read without it changing or being revoked under it.
 */
import { freeze, produce, type Patch } from 'immer';
import { commitSharded, REMOVE } from './sharded-commit';
import { carrySortedKeys, keysUnder, sortedKeys } from './sorted-keys';
import { assertJson, jsonEqual, type Json } from '../json';
import { assertFactKey, keysToken, relationToken, type HandlerBookkeeping, type KnowledgeBase } from '../knowledge-base';
import { shardGet } from './shards';
import type { RelationFactName, RelationModel } from '../relation-model';
import type { FactReader } from '../preconditions';
import { EngineError } from '../errors';
import { checkFactValue, type FactSchemas } from '../fact-schema';


const ABSENT = Symbol('absent');

export interface CommitResult {
  readonly kb: KnowledgeBase;
  /** Forward patches (base → kb): what the agent appends to its log. */
  readonly patches: readonly Patch[];
  /** Inverse patches (kb → base). */
  readonly inversePatches: readonly Patch[];
}

export class Stage implements FactReader {
  private readonly facts = new Map<string, Json | typeof ABSENT>();
  private readonly relations = new Map<string, Json | undefined>();
  private readonly versions = new Map<string, number>();
  private readonly bookkeeping = new Map<string, HandlerBookkeeping>();
  private clock: number;
  /** Tokens changed since the last `takeChanged()`. */
  private changed = new Set<string>();

  constructor(
    readonly base: KnowledgeBase,
    private readonly model: RelationModel,
    /** Whether some handler reads a token (only then are `keys(prefix)` tokens bumped). */
    private readonly isRead: (token: string) => boolean = () => true,
    /** The charm's declared facts: set() checks keys and values against them. */
    private readonly schemas?: FactSchemas,
  ) {
    this.clock = base.clock;
  }

  fact(key: string): Json | undefined {
    const staged = this.facts.get(key);
    if (staged === ABSENT) return undefined;
    if (staged !== undefined) return staged;
    return shardGet(this.base.facts, key);
  }

  /** The current value behind a dependency token (a fact, an endpoint's relation state, or a key listing). */
  tokenValue(token: string): unknown {
    if (token.startsWith('@rel/')) return this.relationState(token.slice(5));
    if (token.startsWith('@keys/')) return this.keys(token.slice(6));
    return this.fact(token);
  }

  relationState(endpoint: string): Json | undefined {
    return this.relations.has(endpoint) ? this.relations.get(endpoint) : this.base.relations[endpoint];
  }

  relationFact(endpoint: string, fact: RelationFactName, key: string | undefined): Json | undefined {
    return this.model.evaluate(this.relationState(endpoint), key === undefined ? { endpoint, fact } : { endpoint, fact, key });
  }

  set(key: string, value: Json): void {
    assertFactKey(key);
    assertJson(value, `value of fact ${key}`);
    checkFactValue(this.schemas, key, value);
    const before = this.fact(key);
    if (jsonEqual(before, value)) return;
    this.facts.set(key, freeze(structuredCloneJson(value), true));
    this.bump(key);
    if (before === undefined) this.bumpKeys(key);
  }

  clear(key: string): void {
    assertFactKey(key);
    if (this.fact(key) === undefined) return;
    this.facts.set(key, ABSENT);
    this.bump(key);
    this.bumpKeys(key);
  }

  keys(prefix?: string): string[] {
    const p = prefix === undefined ? '' : prefix.endsWith('.') ? prefix.slice(0, -1) : prefix;
    const base = keysUnder(sortedKeys(this.base.facts), p);
    if (this.facts.size === 0) return base;
    // Merge the staged additions and removals under the prefix (usually few).
    let added: string[] | undefined;
    let removed: Set<string> | undefined;
    for (const [k, v] of this.facts) {
      if (p !== '' && k !== p && !k.startsWith(`${p}.`)) continue;
      const inBase = shardGet(this.base.facts, k) !== undefined;
      if (v === ABSENT) {
        if (inBase) (removed ??= new Set()).add(k);
      } else if (!inBase) (added ??= []).push(k);
    }
    if (added === undefined && removed === undefined) return base;
    const kept = removed === undefined ? base : base.filter((k) => !removed.has(k));
    return added === undefined ? kept : [...kept, ...added].sort();
  }

  updateRelationState(endpoint: string, recipe: (draft: unknown) => Json | void): void {
    if (typeof endpoint !== 'string' || endpoint.length === 0) {
      throw new EngineError('ENGINE_ERR_BAD_KEY', 'updateRelationState needs an endpoint name');
    }
    const current = this.relationState(endpoint);
    let next: Json | undefined;
    if (current !== null && typeof current === 'object') {
      next = produce(current, recipe as never) as Json;
    } else {
      const returned = recipe(current);
      next = returned === undefined ? current : returned;
    }
    if (next === current) return;
    if (next !== undefined) assertJson(next, `relation state of ${endpoint}`);
    this.relations.set(endpoint, next === undefined ? undefined : freeze(next, true));
    this.bump(relationToken(endpoint));
  }

  removeRelationState(endpoint: string): void {
    if (typeof endpoint !== 'string' || endpoint.length === 0) {
      throw new EngineError('ENGINE_ERR_BAD_KEY', 'removeRelationState needs an endpoint name');
    }
    if (this.relationState(endpoint) === undefined) return;
    this.relations.set(endpoint, undefined);
    this.bump(relationToken(endpoint));
  }

  /** Current version of a dependency token (0 if it never changed). */
  version(token: string): number {
    return this.versions.get(token) ?? shardGet(this.base.versions, token) ?? 0;
  }

  handlerBookkeeping(name: string): HandlerBookkeeping | undefined {
    return this.bookkeeping.get(name) ?? shardGet(this.base.handlers, name);
  }

  /** Records that a handler ran successfully having seen the current versions of its tokens. */
  recordSuccess(name: string, tokens: readonly string[]): void {
    const seen: Record<string, number> = {};
    for (const t of tokens) seen[t] = this.version(t);
    const previous = this.handlerBookkeeping(name);
    this.bookkeeping.set(name, { seen, runs: (previous?.runs ?? 0) + 1 });
  }

  /** Tokens changed since the previous call. */
  takeChanged(): Set<string> {
    const c = this.changed;
    this.changed = new Set();
    return c;
  }

  /** Facts whose staged value differs from the base, sorted. */
  changedFacts(): string[] {
    const out: string[] = [];
    for (const [k, v] of this.facts) {
      const before = shardGet(this.base.facts, k);
      if (v === ABSENT ? before !== undefined : !jsonEqual(before, v)) out.push(k);
    }
    return out.sort();
  }

  changedRelations(): string[] {
    return [...this.relations.keys()].filter((e) => this.relations.get(e) !== this.base.relations[e]).sort();
  }

  commit(): CommitResult {
    const patches: Patch[] = [];
    const inversePatches: Patch[] = [];
    const base = this.base;
    const facts = new Map<string, Json | typeof REMOVE>();
    for (const [k, v] of this.facts) facts.set(k, v === ABSENT ? REMOVE : v);
    const kb: KnowledgeBase = {
      facts: commitSharded(base.facts, 'facts', facts, patches, inversePatches),
      versions: commitSharded(base.versions, 'versions', this.versions, patches, inversePatches),
      clock: this.clock,
      handlers: commitSharded(base.handlers, 'handlers', this.bookkeeping, patches, inversePatches),
      relations: this.commitRelations(patches, inversePatches),
    };
    if (this.clock !== base.clock) {
      patches.push({ op: 'replace', path: ['clock'], value: this.clock });
      inversePatches.push({ op: 'replace', path: ['clock'], value: base.clock });
    }
    // immer lists inverse patches in the order that undoes the forward ones.
    inversePatches.reverse();
    this.carryKeys(kb);
    return { kb: Object.freeze(kb), patches, inversePatches };
  }

  private commitRelations(patches: Patch[], inverse: Patch[]): KnowledgeBase['relations'] {
    if (this.relations.size === 0) return this.base.relations;
    const next: Record<string, Json> = { ...this.base.relations };
    for (const [endpoint, value] of this.relations) {
      const had = Object.prototype.hasOwnProperty.call(this.base.relations, endpoint);
      const before = this.base.relations[endpoint];
      if (value === undefined) {
        if (!had) continue;
        delete next[endpoint];
        patches.push({ op: 'remove', path: ['relations', endpoint] });
        inverse.push({ op: 'add', path: ['relations', endpoint], value: before as Json });
      } else {
        next[endpoint] = value;
        patches.push({ op: had ? 'replace' : 'add', path: ['relations', endpoint], value });
        inverse.push(had ? { op: 'replace', path: ['relations', endpoint], value: before as Json } : { op: 'remove', path: ['relations', endpoint] });
      }
    }
    return Object.freeze(next);
  }

  /** Moves the sorted-key cache to the new facts record (if anything listed keys before). */
  private carryKeys(kb: KnowledgeBase): void {
    const added: string[] = [];
    const removed: string[] = [];
    for (const [k, v] of this.facts) {
      const inBase = shardGet(this.base.facts, k) !== undefined;
      if (v === ABSENT) {
        if (inBase) removed.push(k);
      } else if (!inBase) added.push(k);
    }
    carrySortedKeys(this.base.facts, kb.facts, added, removed);
  }

  /** A key was added or removed: bump the listing tokens of its prefixes that some handler reads. */
  private bumpKeys(key: string): void {
    let t = keysToken('');
    if (this.isRead(t)) this.bump(t);
    for (let i = key.indexOf('.'); ; i = key.indexOf('.', i + 1)) {
      t = keysToken(i === -1 ? key : key.slice(0, i));
      if (this.isRead(t)) this.bump(t);
      if (i === -1) break;
    }
  }

  private bump(token: string): void {
    this.clock += 1;
    this.versions.set(token, this.clock);
    this.changed.add(token);
  }
}

/** Copies a JSON value (already validated) so later mutation by the caller cannot reach the stage. */
function structuredCloneJson<T extends Json>(value: T): T {
  return value !== null && typeof value === 'object' ? structuredClone(value) : value;
}
