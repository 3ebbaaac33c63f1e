/**
 * Seeded pseudo-random numbers (sfc32 seeded through splitmix32), so a
 * simulation with the same seed replays the same run. Not for cryptography.
 */
export type Random = () => number;

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** A uniform float in [0, 1) generator, deterministic for a given seed. */
export function seededRandom(seed: number): Random {
  const init = splitmix32(seed);
  let a = init();
  let b = init();
  let c = init();
  let d = init();
  return () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
}

/** Fisher–Yates shuffle in place. */
export function shuffle<T>(items: T[], random: Random): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = items[i] as T;
    items[i] = items[j] as T;
    items[j] = tmp;
  }
  return items;
}

/** Up to `k` distinct items chosen uniformly from `items` that pass `accept`. */
export function sample<T>(items: readonly T[], k: number, random: Random, accept: (item: T) => boolean): T[] {
  const out: T[] = [];
  const n = items.length;
  if (n === 0 || k <= 0) return out;
  // Random probes first (cheap for large n), then a linear sweep from a random start.
  const seen = new Set<number>();
  for (let tries = 0; tries < 3 * k && out.length < k; tries++) {
    const i = Math.floor(random() * n);
    if (seen.has(i)) continue;
    seen.add(i);
    const item = items[i] as T;
    if (accept(item)) out.push(item);
  }
  if (out.length < k) {
    const start = Math.floor(random() * n);
    for (let j = 0; j < n && out.length < k; j++) {
      const i = (start + j) % n;
      if (seen.has(i)) continue;
      const item = items[i] as T;
      if (accept(item)) out.push(item);
    }
  }
  return out;
}
