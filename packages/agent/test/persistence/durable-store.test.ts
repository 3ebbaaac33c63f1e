import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, readdir, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { testSeed } from '@rhizome/test-support';
import { AgentError, StoreCorruptError } from '../../src/errors';
import { DurableStore, logFileName, snapshotFileName } from '../../src/persistence/durable-store';
import { processStartTime } from '../../src/persistence/dir-lock';
import { encodeFrame } from '../../src/persistence/framing';

type State = { items: number[] };
type Rec = { seq: number; payload: string };

const dirs: string[] = [];
async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rhizome-store-'));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

const sha = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex');

describe('DurableStore', () => {
  it('round-trips records and snapshots across reopen', async () => {
    const dir = await freshDir();
    const first = await DurableStore.open<State, Rec>({ dir });
    expect(first.snapshot).toBeUndefined();
    expect(first.records).toEqual([]);
    expect(first.recovery).toMatchObject({ tornBytesDropped: 0, recordsReplayed: 0, generation: 0 });
    await first.store.append({ seq: 1, payload: 'a' });
    await first.store.appendMany([
      { seq: 2, payload: 'b' },
      { seq: 3, payload: 'ünïcødé' },
    ]);
    await first.store.close();

    const second = await DurableStore.open<State, Rec>({ dir });
    expect(second.records.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(second.records[2]?.payload).toBe('ünïcødé');
    await second.store.snapshot({ items: [1, 2, 3] });
    await second.store.append({ seq: 4, payload: 'd' });
    await second.store.close();

    const third = await DurableStore.open<State, Rec>({ dir });
    expect(third.snapshot).toEqual({ items: [1, 2, 3] });
    expect(third.records).toEqual([{ seq: 4, payload: 'd' }]);
    expect(third.recovery.generation).toBe(1);
    await third.store.close();
    // Only generation 1 remains on disk.
    expect((await readdir(dir)).sort()).toEqual([logFileName(1), snapshotFileName(1)].sort());
  });

  it('groups concurrent appends and keeps their order', async () => {
    const dir = await freshDir();
    const { store } = await DurableStore.open<State, Rec>({ dir });
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.append({ seq: i, payload: 'x' })));
    await store.close();
    const again = await DurableStore.open<State, Rec>({ dir });
    expect(again.records.map((r) => r.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    await again.store.close();
  });

  it('orders appends and snapshots by call order, even before earlier writes finish', async () => {
    const dir = await freshDir();
    const { store } = await DurableStore.open<State, Rec>({ dir });
    const writes = [
      store.append({ seq: 1, payload: 'in snapshot' }),
      store.snapshot({ items: [1] }),
      store.append({ seq: 2, payload: 'after snapshot' }),
      store.append({ seq: 3, payload: 'after snapshot' }),
    ];
    await Promise.all(writes);
    await store.close();
    const again = await DurableStore.open<State, Rec>({ dir });
    expect(again.snapshot).toEqual({ items: [1] });
    expect(again.records.map((r) => r.seq)).toEqual([2, 3]);
    await again.store.close();
  });

  it('refuses a second open of the same directory while the first is open', async () => {
    const dir = await freshDir();
    const { store } = await DurableStore.open({ dir });
    await expect(DurableStore.open({ dir })).rejects.toMatchObject({ code: 'AGENT_ERR_STORE_LOCKED' });
    await store.close();
    const again = await DurableStore.open({ dir });
    await again.store.close();
  });

  it('takes over the lock of a process that died, even when its pid is ours again', async () => {
    const dir = await freshDir();
    // pid 2^22+1 is above Linux's pid_max default range; no such process.
    await writeFile(join(dir, 'LOCK'), '4194305\n');
    const first = await DurableStore.open({ dir });
    await first.store.close();
    // A previous incarnation with our pid (a container restarted as pid 1): other start time.
    await writeFile(join(dir, 'LOCK'), `${process.pid} 1\n`);
    const second = await DurableStore.open({ dir });
    await second.store.close();
  });

  it('refuses a lock held by another live process until it dies', async () => {
    const dir = await freshDir();
    const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const pid = holder.pid!;
      await writeFile(join(dir, 'LOCK'), `${pid} ${processStartTime(pid)}\n`);
      const err = await DurableStore.open({ dir }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'AGENT_ERR_STORE_LOCKED' });
      expect((err as Error).message).toContain(`in use by process ${pid}`);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
    }
    const { store } = await DurableStore.open({ dir });
    await store.close();
  });

  it('rejects writes after close with a typed error', async () => {
    const dir = await freshDir();
    const { store } = await DurableStore.open<State, Rec>({ dir });
    await store.close();
    await expect(store.append({ seq: 1, payload: 'x' })).rejects.toMatchObject({ code: 'AGENT_ERR_STORE_CLOSED' });
    await expect(store.snapshot({ items: [] })).rejects.toBeInstanceOf(AgentError);
  });

  it('drops a torn last record at every byte offset and truncates to the last good record', async () => {
    const dir = await freshDir();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ seq: fc.nat(), payload: fc.string({ maxLength: 40 }) }), { minLength: 1, maxLength: 6 }),
        fc.record({ seq: fc.nat(), payload: fc.string({ minLength: 0, maxLength: 60 }) }),
        fc.nat(),
        async (good, last, cutSeed) => {
          await rm(dir, { recursive: true, force: true });
          const { store } = await DurableStore.open<State, Rec>({ dir, fsync: false });
          await store.appendMany(good);
          await store.append(last);
          await store.close();
          const logPath = join(dir, logFileName(0));
          const full = (await stat(logPath)).size;
          const lastLen = encodeFrame(last).length;
          const lastStart = full - lastLen;
          const cut = lastStart + (cutSeed % lastLen); // every offset inside the last frame
          await truncate(logPath, cut);
          const reopened = await DurableStore.open<State, Rec>({ dir, fsync: false });
          expect(reopened.records).toEqual(good);
          expect(reopened.recovery.tornBytesDropped).toBe(cut - lastStart);
          expect((await stat(logPath)).size).toBe(lastStart);
          // The store keeps working after recovery.
          await reopened.store.append(last);
          await reopened.store.close();
          const again = await DurableStore.open<State, Rec>({ dir, fsync: false });
          expect(again.records).toEqual([...good, last]);
          expect(again.recovery.tornBytesDropped).toBe(0);
          await again.store.close();
        },
      ),
      { numRuns: 60, seed: testSeed('STORE_TORN_SEED', 'torn-tail property') },
    );
  });

  it('drops a last record with a bad checksum, and a zero-filled tail', async () => {
    const dir = await freshDir();
    const { store } = await DurableStore.open<State, Rec>({ dir });
    await store.appendMany([
      { seq: 1, payload: 'a' },
      { seq: 2, payload: 'b' },
    ]);
    await store.close();
    const logPath = join(dir, logFileName(0));
    const bytes = await readFile(logPath);
    const lastLen = encodeFrame({ seq: 2, payload: 'b' }).length;
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    await writeFile(logPath, Buffer.concat([bytes, Buffer.alloc(4096)]));
    const reopened = await DurableStore.open<State, Rec>({ dir });
    expect(reopened.records).toEqual([{ seq: 1, payload: 'a' }]);
    expect(reopened.recovery.tornBytesDropped).toBe(lastLen + 4096);
    await reopened.store.close();
  });

  it('reports corruption in the middle of the log with file and offset, and changes nothing', async () => {
    const dir = await freshDir();
    const { store } = await DurableStore.open<State, Rec>({ dir });
    const recs = Array.from({ length: 5 }, (_, i) => ({ seq: i, payload: `record-${i}` }));
    await store.appendMany(recs);
    await store.close();
    const logPath = join(dir, logFileName(0));
    const bytes = await readFile(logPath);
    const frameLen = encodeFrame(recs[0]).length; // all frames have the same length
    const badOffset = 2 * frameLen;
    bytes[badOffset + 10] = bytes[badOffset + 10]! ^ 0x55; // a payload byte of the third record
    await writeFile(logPath, bytes);
    const before = await sha(logPath);
    const listing = (await readdir(dir)).sort();

    const err = await DurableStore.open<State, Rec>({ dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreCorruptError);
    const corrupt = err as StoreCorruptError;
    expect(corrupt.code).toBe('AGENT_ERR_STORE_CORRUPT');
    expect(corrupt.file).toBe(logPath);
    expect(corrupt.offset).toBe(badOffset);
    expect(corrupt.message).toContain(logPath);
    expect(corrupt.message).toContain(String(badOffset));
    expect(await sha(logPath)).toBe(before);
    expect((await readdir(dir)).sort()).toEqual(listing); // lock released, nothing added or removed
  });

  it('reports a corrupt snapshot and a record rejected by its parser', async () => {
    const dir = await freshDir();
    const { store } = await DurableStore.open<State, Rec>({ dir });
    await store.snapshot({ items: [7] });
    await store.append({ seq: 1, payload: 'x' });
    await store.close();
    await expect(
      DurableStore.open<State, Rec>({
        dir,
        parseRecord: (v) => {
          throw new Error(`not a record: ${JSON.stringify(v)}`);
        },
      }),
    ).rejects.toMatchObject({ code: 'AGENT_ERR_STORE_CORRUPT', offset: 0 });
    const snapPath = join(dir, snapshotFileName(1));
    const bytes = await readFile(snapPath);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    await writeFile(snapPath, bytes);
    await expect(DurableStore.open({ dir })).rejects.toMatchObject({ code: 'AGENT_ERR_STORE_CORRUPT', file: snapPath });
  });

  describe('a crash between the snapshot steps', () => {
    // Builds generation 0 with records [1,2] and keeps copies of its files,
    // then snapshots to generation 1 so the real files of both exist to mix.
    async function twoGenerations(): Promise<{ dir: string; log0: Buffer }> {
      const dir = await freshDir();
      const { store } = await DurableStore.open<State, Rec>({ dir });
      await store.appendMany([
        { seq: 1, payload: 'a' },
        { seq: 2, payload: 'b' },
      ]);
      const log0 = await readFile(join(dir, logFileName(0)));
      await store.snapshot({ items: [1, 2] });
      await store.close();
      return { dir, log0 };
    }

    it('before the rename: the unfinished snapshot is ignored and removed', async () => {
      const { dir, log0 } = await twoGenerations();
      // Rewind to: generation 0 files intact, a half-written snapshot-1 tmp.
      const snap1 = await readFile(join(dir, snapshotFileName(1)));
      await unlink(join(dir, snapshotFileName(1)));
      await unlink(join(dir, logFileName(1)));
      await writeFile(join(dir, logFileName(0)), log0);
      await writeFile(join(dir, `${snapshotFileName(1)}.tmp`), snap1.subarray(0, 5));
      const opened = await DurableStore.open<State, Rec>({ dir });
      expect(opened.snapshot).toBeUndefined();
      expect(opened.records.map((r) => r.seq)).toEqual([1, 2]);
      expect(opened.recovery.filesRemoved).toEqual([`${snapshotFileName(1)}.tmp`]);
      await opened.store.close();
    });

    it('after the rename, before the new log: old records are not replayed onto the new snapshot', async () => {
      const { dir, log0 } = await twoGenerations();
      await unlink(join(dir, logFileName(1)));
      await writeFile(join(dir, logFileName(0)), log0);
      const opened = await DurableStore.open<State, Rec>({ dir });
      expect(opened.snapshot).toEqual({ items: [1, 2] });
      expect(opened.records).toEqual([]);
      expect(opened.recovery.generation).toBe(1);
      expect(opened.recovery.filesRemoved).toEqual([logFileName(0)]);
      await opened.store.append({ seq: 3, payload: 'c' });
      await opened.store.close();
      const again = await DurableStore.open<State, Rec>({ dir });
      expect(again.records.map((r) => r.seq)).toEqual([3]);
      await again.store.close();
    });

    it('after the new log, before cleanup: only the newest generation counts', async () => {
      const { dir, log0 } = await twoGenerations();
      await writeFile(join(dir, logFileName(0)), log0);
      const opened = await DurableStore.open<State, Rec>({ dir });
      expect(opened.snapshot).toEqual({ items: [1, 2] });
      expect(opened.records).toEqual([]);
      await opened.store.close();
      expect(await readdir(dir)).not.toContain(logFileName(0));
    });

    it('a log newer than every snapshot is corruption, not silently replayed', async () => {
      const { dir } = await twoGenerations();
      await copyFile(join(dir, logFileName(1)), join(dir, logFileName(2)));
      await expect(DurableStore.open({ dir })).rejects.toMatchObject({ code: 'AGENT_ERR_STORE_CORRUPT' });
      expect(await readdir(dir)).toContain(logFileName(2));
    });
  });
});
