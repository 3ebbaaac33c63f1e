/**
 * The inbox queue: FIFO order across pushes, drops, compaction and
 * put-backs, checked against a plain array on random operation sequences.
 * A failing case prints its seed; FIFO_SEED=<n> replays it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Fifo } from '../src/internal/fifo';

type Op = { k: 'push'; n: number } | { k: 'shift' } | { k: 'drop'; n: number } | { k: 'unshift'; n: number } | { k: 'take' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('push' as const), n: fc.integer({ min: 1, max: 1500 }) }) },
  { weight: 3, arbitrary: fc.constant({ k: 'shift' as const }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('drop' as const), n: fc.integer({ min: 0, max: 1500 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('unshift' as const), n: fc.integer({ min: 0, max: 40 }) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'take' as const }) },
);

describe('Fifo', () => {
  it('behaves as an array used as a queue', () => {
    const seed = Number(process.env['FIFO_SEED'] ?? Date.now() % 2 ** 31);
    console.log(`fifo property seed ${seed} (replay: FIFO_SEED=${seed})`);
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const q = new Fifo<number>();
        const model: number[] = [];
        let next = 0;
        for (const o of ops) {
          if (o.k === 'push') for (let i = 0; i < o.n; i++) { q.push(next); model.push(next++); }
          else if (o.k === 'shift') expect(q.shift()).toBe(model.shift());
          else if (o.k === 'drop') { q.drop(o.n); model.splice(0, o.n); }
          else if (o.k === 'unshift') { const back = Array.from({ length: o.n }, () => next++); q.unshiftAll(back); model.unshift(...back); }
          else expect(q.takeAll()).toEqual(model.splice(0));
          expect(q.length).toBe(model.length);
          expect(q.at(0)).toBe(model[0]);
          expect(q.at(model.length - 1)).toBe(model[model.length - 1]);
          expect(q.at(model.length)).toBeUndefined();
        }
      }),
      { seed, numRuns: 200 },
    );
  });
});
