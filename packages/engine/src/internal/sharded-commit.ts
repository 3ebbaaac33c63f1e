/**
 * Commits a set of key changes into a sharded record by path copying: only
 * the objects on the path to a changed key are copied (top array, middle
 * array, leaf), then frozen; everything else is shared with the previous
 * snapshot. Patches are emitted in immer's format, so immer's `applyPatches`
 * replays them (recovery does exactly that).
 *
 * We do not use immer's `produce` here on purpose: its generic finalization
 * visits and freeze-checks every property of every copied object, which made
 * a commit cost several times the copy itself (measured with bench/engine).
 * The result has the same properties: structural sharing, frozen values,
 * patches and inverse patches.
 */
import type { Patch } from 'immer';
import { SHARD_COUNT, shardOf, type Sharded } from './shards';

export const REMOVE = Symbol('remove');

type Leaf = Record<string, unknown>;
type Mid = Array<Leaf | null>;

export function commitSharded<V>(
  base: Sharded<V>,
  root: string,
  changes: ReadonlyMap<string, V | typeof REMOVE>,
  patches: Patch[],
  inverse: Patch[],
): Sharded<V> {
  if (changes.size === 0) return base;
  // Array.from, not slice(): V8 copies frozen arrays through a slow path in slice().
  const top = Array.from(base) as Array<Mid | null>;
  const copied = new Set<object>([top]);
  for (const [key, value] of changes) {
    const [a, b] = shardOf(key);
    let mid = top[a] ?? null;
    if (mid === null) {
      if (value === REMOVE) continue;
      mid = new Array<Leaf | null>(SHARD_COUNT).fill(null);
      mid[b] = { [key]: value };
      top[a] = mid;
      copied.add(mid).add(mid[b]!);
      patches.push({ op: 'replace', path: [root, a], value: mid });
      inverse.push({ op: 'replace', path: [root, a], value: null });
      continue;
    }
    if (!copied.has(mid)) {
      mid = Array.from(mid);
      top[a] = mid;
      copied.add(mid);
    }
    let leaf = mid[b] ?? null;
    if (leaf === null) {
      if (value === REMOVE) continue;
      leaf = { [key]: value };
      mid[b] = leaf;
      copied.add(leaf);
      patches.push({ op: 'replace', path: [root, a, b], value: leaf });
      inverse.push({ op: 'replace', path: [root, a, b], value: null });
      continue;
    }
    if (!copied.has(leaf)) {
      leaf = { ...leaf };
      mid[b] = leaf;
      copied.add(leaf);
    }
    const had = Object.prototype.hasOwnProperty.call(leaf, key);
    const before = leaf[key];
    if (value === REMOVE) {
      if (!had) continue;
      delete leaf[key];
      patches.push({ op: 'remove', path: [root, a, b, key] });
      inverse.push({ op: 'add', path: [root, a, b, key], value: before });
    } else {
      leaf[key] = value;
      patches.push({ op: had ? 'replace' : 'add', path: [root, a, b, key], value });
      inverse.push(had ? { op: 'replace', path: [root, a, b, key], value: before } : { op: 'remove', path: [root, a, b, key] });
    }
  }
  for (const o of copied) Object.freeze(o);
  return top as Sharded<V>;
}
