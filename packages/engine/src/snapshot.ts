/**
 * Knowledge bases travel to disk and back (msgpack snapshots plus the
 * patches of each commit). What comes back from disk is untrusted: it is
 * checked for shape here, frozen, and only then used as a snapshot.
 */
import { applyPatches, enablePatches, type Patch } from 'immer';
import { EngineError } from './errors';
import type { KnowledgeBase } from './knowledge-base';
import { SHARD_COUNT } from './internal/shards';

// Commits emit immer-format patches themselves (sharded-commit.ts); only replay needs immer's patch plugin.
enablePatches();

/** Turns a decoded snapshot back into a knowledge base, or throws ENGINE_ERR_STATE saying what is wrong. */
export function reviveKnowledgeBase(input: unknown): KnowledgeBase {
  const problem = (what: string): never => {
    throw new EngineError('ENGINE_ERR_STATE', `not a knowledge base snapshot: ${what}`);
  };
  if (input === null || typeof input !== 'object') return problem('expected an object');
  const kb = input as Record<string, unknown>;
  for (const field of ['facts', 'versions', 'handlers'] as const) {
    const top = kb[field];
    if (!Array.isArray(top) || top.length !== SHARD_COUNT) problem(`${field} must be an array of ${SHARD_COUNT} buckets`);
    for (const mid of top as unknown[]) {
      if (mid === null) continue;
      if (!Array.isArray(mid) || mid.length !== SHARD_COUNT) problem(`${field} has a malformed bucket`);
      for (const leaf of mid as unknown[]) {
        if (leaf !== null && (typeof leaf !== 'object' || Array.isArray(leaf))) problem(`${field} has a malformed leaf`);
      }
    }
  }
  if (typeof kb['clock'] !== 'number' || !Number.isInteger(kb['clock']) || kb['clock'] < 0) problem('clock must be a non-negative integer');
  if (kb['relations'] === null || typeof kb['relations'] !== 'object' || Array.isArray(kb['relations'])) problem('relations must be an object');
  return deepFreeze(input) as KnowledgeBase;
}

/** Replays a commit's patches onto the knowledge base it was made from (log recovery). */
export function replayPatches(kb: KnowledgeBase, patches: readonly Patch[]): KnowledgeBase {
  try {
    return deepFreeze(applyPatches(kb, patches as Patch[])) as KnowledgeBase;
  } catch (cause) {
    throw new EngineError('ENGINE_ERR_STATE', `a logged commit does not apply to the recovered knowledge base: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

function deepFreeze(value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
