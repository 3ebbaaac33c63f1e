/**
 * The knowledge base: an immutable (immer-frozen) snapshot of everything an
 * agent knows. A run works on a draft of it and either commits a new
 * snapshot with patches, or drops the draft: the pre-run snapshot is never
 * touched, so rollback is exact by construction.
 *
 * Facts, versions and handler bookkeeping are sharded records: two levels
 * of 64-slot arrays keyed by a hash of the key, above small leaf objects. A
 * commit copies two 64-slot arrays and one small leaf instead of a record
 * with every fact in it: an immutable flat record makes each commit
 * O(facts), and a charm with 10,000 handlers would pay for all of them on
 * every run. Arrays, not objects, for the index levels: copying a 64-slot
 * array is several times cheaper than spreading a 64-key object.
 *
 * Change tracking uses versions, not values: every dependency token (a fact
 * key, or `@rel/<endpoint>` for an endpoint's relation state) records the
 * logical clock of its last change, and each handler records the versions
 * it saw when it last ran successfully. "Did what I read change?" is then a
 * handful of integer compares, whatever the size of the values.
 */
import { EngineError } from './errors';
import { assertJson, type Json } from './json';
import { buildSharded, EMPTY_SHARDED, shardEntries, shardGet, type Sharded } from './internal/shards';

export interface HandlerBookkeeping {
  /** Dependency token → version seen when the handler last ran successfully. */
  readonly seen: Readonly<Record<string, number>>;
  /** Successful executions, for status. */
  readonly runs: number;
}

export interface KnowledgeBase {
  /** Dotted key → JSON value; `true` is a flag. Absent means not set. Read with getFact / factsOf. */
  readonly facts: Sharded<Json>;
  /** Dependency token → logical clock value of its last change. */
  readonly versions: Sharded<number>;
  /** Logical clock; increases by one for every change. */
  readonly clock: number;
  /** Per-handler bookkeeping, by handler name. */
  readonly handlers: Sharded<HandlerBookkeeping>;
  /** Relation state by endpoint, owned by packages/relations; opaque JSON here. */
  readonly relations: Readonly<Record<string, Json>>;
}

const MAX_KEY_LENGTH = 256;

export const EMPTY_KNOWLEDGE_BASE: KnowledgeBase = Object.freeze({
  facts: EMPTY_SHARDED,
  versions: EMPTY_SHARDED,
  clock: 0,
  handlers: EMPTY_SHARDED,
  relations: Object.freeze({}),
});

/** A fact's committed value, or undefined when not set. */
export function getFact(kb: KnowledgeBase, key: string): Json | undefined {
  return shardGet(kb.facts, key);
}

/** Every fact as one plain object with sorted keys (O(facts): for status, tests and tools, not hot paths). */
export function factsOf(kb: KnowledgeBase): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [k, v] of [...shardEntries(kb.facts)].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) out[k] = v;
  return out;
}


/** Throws ENGINE_ERR_BAD_KEY for keys that cannot name a fact. */
export function assertFactKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') {
    throw new EngineError('ENGINE_ERR_BAD_KEY', `fact key must be a string, got ${key === null ? 'null' : typeof key}`);
  }
  if (key.length === 0 || key.trim() !== key) {
    throw new EngineError('ENGINE_ERR_BAD_KEY', `fact key ${JSON.stringify(key)} is empty or has surrounding spaces; use a dotted name like "hdfs.installed"`);
  }
  if (key.length > MAX_KEY_LENGTH) {
    throw new EngineError('ENGINE_ERR_BAD_KEY', `fact key is ${key.length} characters; the limit is ${MAX_KEY_LENGTH}`);
  }
  if (key.startsWith('@')) {
    throw new EngineError('ENGINE_ERR_BAD_KEY', `fact key ${JSON.stringify(key)} starts with "@", which is reserved for the engine's own dependency tokens`);
  }
}

/** The dependency token under which changes to an endpoint's relation state are tracked. */
export function relationToken(endpoint: string): string {
  return `@rel/${endpoint}`;
}

/**
 * The dependency token of `keys(prefix)`: bumped when a fact under the prefix
 * is added or removed (not when a value changes), for prefixes some handler
 * has read. `keys()` and `keys('')` share the token of every key.
 */
export function keysToken(prefix: string | undefined): string {
  const p = prefix === undefined ? '' : prefix.endsWith('.') ? prefix.slice(0, -1) : prefix;
  return `@keys/${p}`;
}

/** Builds a knowledge base from plain facts (and relation state), validating every key and value. */
export function createKnowledgeBase(init: { facts?: Record<string, unknown>; relations?: Record<string, unknown> } = {}): KnowledgeBase {
  const facts: Array<[string, Json]> = [];
  const versions: Array<[string, number]> = [];
  let clock = 0;
  for (const [key, value] of Object.entries(init.facts ?? {})) {
    assertFactKey(key);
    assertJson(value, `fact ${key}`);
    facts.push([key, value]);
    versions.push([key, ++clock]);
  }
  const relations: Record<string, Json> = {};
  for (const [endpoint, value] of Object.entries(init.relations ?? {})) {
    assertJson(value, `relation state ${endpoint}`);
    relations[endpoint] = value;
    versions.push([relationToken(endpoint), ++clock]);
  }
  for (const [, value] of facts) deepFreeze(value);
  return Object.freeze({
    facts: buildSharded(facts),
    versions: buildSharded(versions),
    clock,
    handlers: EMPTY_SHARDED as Sharded<HandlerBookkeeping>,
    relations: deepFreeze(relations),
  });
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
