/**
 * The knowledge base: an immutable (immer-frozen) snapshot of everything an
 * agent knows. A run works on a draft of it and either commits a new
 * snapshot with patches, or drops the draft: the pre-run snapshot is never
 * touched, so rollback is exact by construction.
 *
 * Change tracking uses versions, not values: every dependency token (a fact
 * key, or `@rel/<endpoint>` for an endpoint's relation state) records the
 * logical clock of its last change, and each handler records the versions
 * it saw when it last ran successfully. "Did what I read change?" is then a
 * handful of integer compares, whatever the size of the values.
 */
import { EngineError } from './errors';
import { assertJson, type Json } from './json';

export interface HandlerBookkeeping {
  /** Dependency token → version seen when the handler last ran successfully. */
  readonly seen: Readonly<Record<string, number>>;
  /** Successful executions, for status. */
  readonly runs: number;
}

export interface KnowledgeBase {
  /** Dotted key → JSON value; `true` is a flag. Absent means not set. */
  readonly facts: Readonly<Record<string, Json>>;
  /** Dependency token → logical clock value of its last change. */
  readonly versions: Readonly<Record<string, number>>;
  /** Logical clock; increases by one for every change. */
  readonly clock: number;
  /** Per-handler bookkeeping, by handler name. */
  readonly handlers: Readonly<Record<string, HandlerBookkeeping>>;
  /** Relation state by endpoint, owned by packages/relations; opaque JSON here. */
  readonly relations: Readonly<Record<string, Json>>;
}

export const EMPTY_KNOWLEDGE_BASE: KnowledgeBase = Object.freeze({
  facts: Object.freeze({}),
  versions: Object.freeze({}),
  clock: 0,
  handlers: Object.freeze({}),
  relations: Object.freeze({}),
});

const MAX_KEY_LENGTH = 256;

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

/** Builds a knowledge base from plain facts (and relation state), validating every key and value. */
export function createKnowledgeBase(init: { facts?: Record<string, unknown>; relations?: Record<string, unknown> } = {}): KnowledgeBase {
  const facts: Record<string, Json> = {};
  const versions: Record<string, number> = {};
  let clock = 0;
  for (const [key, value] of Object.entries(init.facts ?? {})) {
    assertFactKey(key);
    assertJson(value, `fact ${key}`);
    facts[key] = value;
    versions[key] = ++clock;
  }
  const relations: Record<string, Json> = {};
  for (const [endpoint, value] of Object.entries(init.relations ?? {})) {
    assertJson(value, `relation state ${endpoint}`);
    relations[endpoint] = value;
    versions[relationToken(endpoint)] = ++clock;
  }
  return deepFreeze({ facts, versions, clock, handlers: {}, relations });
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
