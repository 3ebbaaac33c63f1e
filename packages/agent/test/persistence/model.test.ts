import { mkdtemp, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { testSeed } from '@rhizome/test-support';
import { DurableStore, logFileName } from '../../src/persistence/durable-store';
import type { OpenedStore } from '../../src/persistence/durable-store';
import { encodeFrame } from '../../src/persistence/framing';

type Rec = { seq: number; pad: string };
type State = number[];

type Op =
  | { kind: 'append'; pad: string }
  | { kind: 'appendMany'; pads: string[] }
  | { kind: 'snapshot' }
  | { kind: 'reopen' }
  | { kind: 'tearTail'; cut: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('append' as const), pad: fc.string({ maxLength: 20 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('appendMany' as const), pads: fc.array(fc.string({ maxLength: 8 }), { maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'snapshot' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('tearTail' as const), cut: fc.nat() }) },
);

const root = await mkdtemp(join(tmpdir(), 'rhizome-model-'));
afterAll(() => rm(root, { recursive: true, force: true }));
let run = 0;

describe('DurableStore against a model', () => {
  it('recovers exactly snapshot + unsnapshotted records under any mix of appends, snapshots, reopens and torn tails', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 30 }), async (ops) => {
        const dir = join(root, `run-${run++}`, 'nested', 'data'); // created on open, parents too
        let seq = 0;
        let modelSnap: State | undefined;
        let modelLog: Rec[] = [];
        let opened: OpenedStore<State, Rec> = await DurableStore.open<State, Rec>({ dir, fsync: false });
        const check = (o: OpenedStore<State, Rec>): void => {
          expect(o.snapshot).toEqual(modelSnap);
          expect(o.records).toEqual(modelLog);
        };
        const reopen = async (): Promise<void> => {
          await opened.store.close();
          opened = await DurableStore.open<State, Rec>({ dir, fsync: false });
          check(opened);
        };
        try {
          for (const op of ops) {
            switch (op.kind) {
              case 'append': {
                const rec = { seq: seq++, pad: op.pad };
                await opened.store.append(rec);
                modelLog.push(rec);
                break;
              }
              case 'appendMany': {
                const recs = op.pads.map((pad) => ({ seq: seq++, pad }));
                await opened.store.appendMany(recs);
                modelLog.push(...recs);
                break;
              }
              case 'snapshot': {
                const state = [...(modelSnap ?? []), ...modelLog.map((r) => r.seq)];
                await opened.store.snapshot(state);
                modelSnap = state;
                modelLog = [];
                break;
              }
              case 'reopen':
                await reopen();
                break;
              case 'tearTail': {
                const last = modelLog[modelLog.length - 1];
                if (last === undefined) break;
                await opened.store.close();
                const path = join(dir, logFileName(opened.store.currentGeneration));
                const size = (await stat(path)).size;
                const frameLen = encodeFrame(last).length;
                await truncate(path, size - frameLen + (op.cut % frameLen));
                modelLog.pop();
                opened = await DurableStore.open<State, Rec>({ dir, fsync: false });
                check(opened);
                break;
              }
            }
          }
          await reopen();
        } finally {
          await opened.store.close();
        }
      }),
      { numRuns: 60, seed: testSeed('STORE_MODEL_SEED', 'store model test') },
    );
  }, 60_000);
});
