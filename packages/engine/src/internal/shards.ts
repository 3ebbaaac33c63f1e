/**
 * Sharded records, the knowledge base's storage (knowledge-base.ts says
 * why): a record split by a hash of the key into 64 × 64 leaves, two levels
 * of fixed-length arrays (null where empty) above small leaf objects. Read
 * one with shardGet / shardEntries. The layout is part of the on-disk
 * format (patch paths name the buckets).
 */
export type ShardLeaf<V> = Readonly<Record<string, V>>;
export type Sharded<V> = ReadonlyArray<ReadonlyArray<ShardLeaf<V> | null> | null>;

/** An empty sharded record (frozen, shareable). */
export function emptySharded<V>(): Sharded<V> {
  return EMPTY_SHARDED as Sharded<V>;
}

/**
 * Buckets per level: 64 × 64 leaves keep every copied object at or below 64
 * entries up to ~250,000 keys. Changing it changes patch paths, so it is
 * part of the on-disk format.
 */
export const SHARD_COUNT = 64;

/** The two bucket indexes of a key: FNV-1a (32 bits), low and next six bits. */
export function shardOf(key: string): readonly [number, number] {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return [h & 63, (h >>> 6) & 63];
}

export const EMPTY_SHARDED: Sharded<never> = Object.freeze(new Array<null>(SHARD_COUNT).fill(null));

export function shardGet<V>(record: Sharded<V>, key: string): V | undefined {
  const [a, b] = shardOf(key);
  const leaf = record[a]?.[b];
  return leaf && Object.prototype.hasOwnProperty.call(leaf, key) ? leaf[key] : undefined;
}

export function* shardEntries<V>(record: Sharded<V>): Generator<[string, V]> {
  for (const mid of record) {
    if (!mid) continue;
    for (const leaf of mid) if (leaf) for (const entry of Object.entries(leaf)) yield entry;
  }
}

/** Builds a fresh (frozen) sharded record from entries. */
export function buildSharded<V>(entries: Iterable<readonly [string, V]>): Sharded<V> {
  const top: Array<Array<Record<string, V> | null> | null> = new Array(SHARD_COUNT).fill(null);
  for (const [key, value] of entries) {
    const [a, b] = shardOf(key);
    const mid = (top[a] ??= new Array(SHARD_COUNT).fill(null));
    (mid[b] ??= {})[key] = value;
  }
  for (const mid of top) if (mid) {
    for (const leaf of mid) if (leaf) Object.freeze(leaf);
    Object.freeze(mid);
  }
  return Object.freeze(top);
}

