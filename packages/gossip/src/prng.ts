/**
 * Random choices for the protocol, over a seeded source (@rhizome/clock's
 * seededRandom), so a simulation with the same seed replays the same run.
 */
import type { Random } from '@rhizome/clock';

export { seededRandom, type Random } from '@rhizome/clock';

/** Fisher–Yates shuffle in place (of the first `n` items: a typed array may have spare room). */
export function shuffle<T, A extends { [i: number]: T; readonly length: number }>(items: A, random: Random, n = items.length): A {
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = items[i] as T;
    items[i] = items[j] as T;
    items[j] = tmp;
  }
  return items;
}

/** Up to `k` distinct items chosen uniformly from the first `n` of `items` that pass `accept`. */
export function sample<T>(items: ArrayLike<T>, k: number, random: Random, accept: (item: T) => boolean, n = items.length): T[] {
  const out: T[] = [];
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
