import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine, event, factsOf, internalEvent } from '@rhizome/engine';
import { emptyLinkRecord } from '@rhizome/relations';
import { DurableState } from '../../src/state/durable-state';
import { FRAME_HEADER_BYTES } from '../../src/persistence/framing';

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'rz-state-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** An engine whose `user.n` event appends the payload to the fact `seen`. */
function engineOn(state: DurableState): Engine {
  return new Engine({
    initial: state.recoveredKb,
    onCommit: (c) => state.commitRun(c),
    handlers: [
      {
        name: 'record',
        when: event('user.n'),
        run: (ctx) => {
          const n = (ctx.event?.payload as number) ?? 0;
          ctx.set('seen', [...(ctx.get<number[]>('seen') ?? []), n]);
          ctx.set(`n.${n}`, n);
        },
      },
    ],
  });
}

async function commitValues(state: DurableState, values: number[]): Promise<Record<string, unknown>> {
  const engine = engineOn(state);
  for (const n of values) await engine.submit(internalEvent('user.n', n));
  return factsOf(engine.knowledge);
}

const logFile = async (dir: string): Promise<string> => join(dir, (await readdir(dir)).find((f) => f.endsWith('.rlog'))!);

/** A closed state whose log holds four committed records (no snapshot), and that log's bytes. */
async function fourRecordLog(): Promise<{ dir: string; log: string; bytes: Buffer }> {
  const dir = await tmp();
  const s1 = await DurableState.open({ dir, fsync: false, snapshotEvery: 1000 });
  await commitValues(s1, [1, 2, 3, 4]);
  await s1.close();
  const log = await logFile(dir);
  return { dir, log, bytes: await readFile(log) };
}

describe('DurableState', () => {
  it('recovers the knowledge base, link store and declarations (through snapshots) exactly', async () => {
    const dir = await tmp();
    const s1 = await DurableState.open({ dir, fsync: false, snapshotEvery: 4 });
    const facts = await commitValues(s1, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    s1.linkStore.put('r|a/0', { ...emptyLinkRecord('r', 'a/0', 7), nextSeq: 3 });
    s1.linkStore.put('r|b/0', emptyLinkRecord('r', 'b/0'));
    s1.linkStore.delete('r|b/0');
    const d = { id: 'a:x~b:y', a: { service: 'a', endpoint: 'x' }, b: { service: 'b', endpoint: 'y' }, removed: false, stamp: 10, origin: 'a/0' };
    expect(await s1.putDeclaration(d)).toBe(true);
    expect(await s1.putDeclaration({ ...d, stamp: 5, removed: true })).toBe(false); // older: loses
    expect(await s1.putDeclaration({ ...d, stamp: 11, removed: true })).toBe(true); // newer tombstone wins
    await s1.barrier();
    expect(s1.generation).toBeGreaterThan(0);
    await s1.close();

    const s2 = await DurableState.open({ dir, fsync: false, snapshotEvery: 4 });
    expect(factsOf(s2.recoveredKb)).toEqual(facts);
    expect(s2.linkStore.keys()).toEqual(['r|a/0']);
    expect(s2.linkStore.get('r|a/0')).toMatchObject({ relationId: 'r', remoteUnit: 'a/0', nextSeq: 3 });
    expect(s2.declarations()).toEqual([{ ...d, stamp: 11, removed: true }]);
    // and it goes on from there
    const more = await commitValues(s2, [11]);
    expect(more['seen']).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    await s2.close();
  });

  it('drops a torn last record: the state is the one before that commit', async () => {
    const dir = await tmp();
    const s1 = await DurableState.open({ dir, fsync: false, snapshotEvery: 1000 });
    await commitValues(s1, [1, 2, 3]);
    await s1.close();
    const log = await logFile(dir);
    const size = (await readFile(log)).length;
    await truncate(log, size - 3);
    const s2 = await DurableState.open({ dir, fsync: false });
    expect(s2.recovery.tornBytesDropped).toBeGreaterThan(0);
    expect(factsOf(s2.recoveredKb)['seen']).toEqual([1, 2]);
    await s2.close();
  });

  it('refuses a corrupt record in the middle of the log with the file and offset, and changes nothing on disk', async () => {
    const { dir, log, bytes } = await fourRecordLog();
    const damaged = Buffer.from(bytes);
    // a payload byte of the first record (its header intact): a checksum mismatch no crash can cause
    const at = FRAME_HEADER_BYTES + 2;
    damaged[at] = damaged[at]! ^ 0xff;
    await writeFile(log, damaged);
    const err = await DurableState.open({ dir, fsync: false }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'AGENT_ERR_STORE_CORRUPT' });
    expect((err as Error).message).toContain(log);
    expect(await readFile(log)).toEqual(damaged); // no data lost: the operator decides
    // the lock was released: after repairing the file, the state opens with everything
    await writeFile(log, bytes);
    const s2 = await DurableState.open({ dir, fsync: false });
    expect(factsOf(s2.recoveredKb)['seen']).toEqual([1, 2, 3, 4]);
    await s2.close();
  });

  it('tells a damaged length header in the middle from a torn tail: refuses instead of cutting acknowledged records', async () => {
    const { dir, log, bytes } = await fourRecordLog();
    const damaged = Buffer.from(bytes);
    damaged.writeUInt32LE(bytes.length, 0); // the first record now claims to run past the end of the file
    await writeFile(log, damaged);
    const err = await DurableState.open({ dir, fsync: false }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'AGENT_ERR_STORE_CORRUPT' });
    expect((err as Error).message).toMatch(/runs past the end of the file, but a valid frame follows/);
    expect(await readFile(log)).toEqual(damaged);
  });
});
