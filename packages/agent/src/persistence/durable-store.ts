/**
 * DurableStore: an agent's durable state as a snapshot file plus an
 * append-only log, both msgpack frames (see `framing.ts`).
 *
 * Files in the data directory, all named by a *generation* number G:
 *
 *     snapshot-G.rsnap      one frame: the state as of the start of generation G
 *     log-G.rlog            frames: the records appended since that snapshot
 *     snapshot-G.rsnap.tmp  a snapshot being written (never trusted)
 *     LOCK                  the pid of the process that has the directory open
 *
 * Generation 0 has no snapshot (the state starts empty). The recovered state
 * is always "newest complete snapshot G (if any) + the records of log-G";
 * logs of other generations are never replayed.
 *
 * ## Appending
 * `append`/`appendMany` write frames at the end of log-G and resolve only
 * after `fdatasync`: a resolved append survives a crash. Appends that arrive
 * while a write is in flight are grouped into the next write and share one
 * fsync (group commit). If a write or fsync fails, the store refuses further
 * work (`AGENT_ERR_STORE_FAILED`): the file may end with a partial frame, which
 * recovery drops on the next open.
 *
 * ## Snapshot (G -> G+1)
 *   1. write snapshot-(G+1).rsnap.tmp, fsync it;
 *   2. rename it to snapshot-(G+1).rsnap, fsync the directory   <- commit point
 *   3. create the empty log-(G+1).rlog, fsync the directory; later appends go there;
 *   4. delete snapshot-G and log-G.
 * Appends and snapshots are serialized, so the state passed to `snapshot` must
 * reflect every record appended before the call.
 *
 * ## Crash safety
 * - Crash before the commit point: snapshot-(G+1) does not exist under its
 *   final name (rename is atomic), so recovery uses snapshot-G + log-G, which
 *   hold every acknowledged record; the .tmp file is deleted.
 * - Crash after the commit point: recovery uses snapshot-(G+1), whose state
 *   already includes every record of log-G, and log-(G+1) (created empty if
 *   the crash came before step 3). log-G is named by its generation, so it is
 *   never replayed onto the newer snapshot: nothing is applied twice. It is
 *   deleted.
 * - Crash during an append: the tail of log-G may hold a partial frame, or
 *   zeros. That frame was never acknowledged; recovery drops it and truncates
 *   the log to its last good frame (`recovery.tornBytesDropped`).
 * - A bad frame that is *not* at the tail, a snapshot that fails its checksum,
 *   or a log newer than every snapshot cannot be produced by a crash: the open
 *   fails with `StoreCorruptError` (file and byte offset) and no file is
 *   changed, so the operator can decide.
 */
import { chmod, mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../internal/private-fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { AgentError, StoreCorruptError } from '../errors';
import { acquireDirLock } from './dir-lock';
import type { DirLock } from './dir-lock';
import { MAX_RECORD_BYTES, FRAME_HEADER_BYTES, encodeFrame, scanFrames } from './framing';
import { readIfExists } from './read-if-exists';

export interface DurableStoreOptions<S = unknown, R = unknown> {
  /** Data directory; created if missing. One store per directory (locked). */
  dir: string;
  /** fsync on every append and snapshot. Default true; false only for tests and simulation. */
  fsync?: boolean;
  /** Checks a decoded snapshot (untrusted bytes from disk); throw to reject it as corrupt. */
  parseSnapshot?: (value: unknown) => S;
  /** Checks a decoded log record; throw to reject it as corrupt. */
  parseRecord?: (value: unknown) => R;
}

export const DEFAULT_DURABLE_STORE_OPTIONS = Object.freeze({
  /** Durability is the point of the store: a resolved append survives power loss. */
  fsync: true,
});

export interface Recovery {
  /** Bytes of a torn last record dropped from the log (and truncated away). */
  tornBytesDropped: number;
  /** Records read back from the log (to be applied on top of the snapshot). */
  recordsReplayed: number;
  /** Generation opened (0 = no snapshot yet). */
  generation: number;
  /** Leftover files removed: an unfinished snapshot, files of older generations. */
  filesRemoved: string[];
}

export interface OpenedStore<S, R> {
  store: DurableStore<S, R>;
  snapshot: S | undefined;
  records: R[];
  recovery: Recovery;
}

const SNAPSHOT_RE = /^snapshot-(\d{16})\.rsnap$/;
const SNAPSHOT_TMP_RE = /^snapshot-(\d{16})\.rsnap\.tmp$/;
const LOG_RE = /^log-(\d{16})\.rlog$/;

const pad = (gen: number): string => String(gen).padStart(16, '0');
export const snapshotFileName = (gen: number): string => `snapshot-${pad(gen)}.rsnap`;
export const logFileName = (gen: number): string => `log-${pad(gen)}.rlog`;

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeAll(handle: FileHandle, buf: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buf.length) {
    const { bytesWritten } = await handle.write(buf, offset, buf.length - offset);
    offset += bytesWritten;
  }
}

interface Batch {
  frames: Buffer[];
  done: Promise<void>;
}

export class DurableStore<S, R> {
  readonly dir: string;
  private readonly fsync: boolean;
  private generation: number;
  private log: FileHandle;
  private readonly lock: DirLock;
  /** Every file operation runs in this chain, one at a time. */
  private queue: Promise<void> = Promise.resolve();
  /** The batch that new appends join; taken when its write starts. */
  private pending: Batch | undefined;
  private closed = false;
  private failure: unknown;
  private bytesInLog: number;
  private recordsInLog: number;

  private constructor(init: {
    dir: string;
    fsync: boolean;
    generation: number;
    log: FileHandle;
    lock: DirLock;
    logBytes: number;
    logRecords: number;
  }) {
    this.dir = init.dir;
    this.fsync = init.fsync;
    this.generation = init.generation;
    this.log = init.log;
    this.lock = init.lock;
    this.bytesInLog = init.logBytes;
    this.recordsInLog = init.logRecords;
  }

  /**
   * Opens (or creates) the store in `opts.dir` and recovers its contents:
   * the last snapshot and the records appended since, with a torn last record
   * dropped. Throws `StoreCorruptError` for damage a crash cannot cause and
   * `AGENT_ERR_STORE_LOCKED` if another live process has the directory open.
   */
  static async open<S = unknown, R = unknown>(opts: DurableStoreOptions<S, R>): Promise<OpenedStore<S, R>> {
    if (typeof opts.dir !== 'string' || opts.dir === '') {
      throw new AgentError('AGENT_ERR_BAD_OPTIONS', 'DurableStore.open: `dir` must be a non-empty path');
    }
    const dir = resolve(opts.dir);
    const fsync = opts.fsync ?? DEFAULT_DURABLE_STORE_OPTIONS.fsync;
    // Facts and relation data (passwords): only the agent's user may read them.
    const created = await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    await chmod(dir, PRIVATE_DIR_MODE);
    if (created !== undefined && fsync) {
      // New directories exist durably only once their parents' entries are synced.
      for (let d = dir; d !== dirname(created); d = dirname(d)) await fsyncDir(dirname(d));
    }
    const lock = await acquireDirLock(dir);
    try {
      return await DurableStore.recover<S, R>(dir, fsync, lock, opts);
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  private static async recover<S, R>(
    dir: string,
    fsync: boolean,
    lock: DirLock,
    opts: DurableStoreOptions<S, R>,
  ): Promise<OpenedStore<S, R>> {
    const names = await readdir(dir);
    // Files an older version (or a permissive umask) left readable by others.
    for (const name of names) await chmod(join(dir, name), PRIVATE_FILE_MODE).catch(() => undefined);
    const snapshots: number[] = [];
    const logs: number[] = [];
    const tmps: string[] = [];
    for (const name of names) {
      let m = SNAPSHOT_RE.exec(name);
      if (m?.[1] !== undefined) snapshots.push(Number(m[1]));
      m = LOG_RE.exec(name);
      if (m?.[1] !== undefined) logs.push(Number(m[1]));
      if (SNAPSHOT_TMP_RE.test(name)) tmps.push(name);
    }
    const generation = snapshots.length === 0 ? 0 : Math.max(...snapshots);

    // A log newer than every snapshot: its snapshot was lost. Not a crash state.
    const orphan = logs.find((g) => g > generation);
    if (orphan !== undefined) {
      throw new StoreCorruptError(
        join(dir, logFileName(orphan)),
        0,
        `log of generation ${orphan} but the newest snapshot is generation ${generation} (its snapshot file is missing)`,
      );
    }

    // Read everything first; change nothing until it all checks out.
    let snapshot: S | undefined;
    if (generation > 0) {
      const file = join(dir, snapshotFileName(generation));
      const buf = await readFile(file);
      const scan = scanFrames(buf, file);
      if (scan.values.length !== 1 || scan.tornBytes !== 0) {
        throw new StoreCorruptError(file, scan.goodBytes, 'a snapshot must be exactly one intact frame');
      }
      snapshot = DurableStore.parse(opts.parseSnapshot, scan.values[0], file, 0);
    }
    const logPath = join(dir, logFileName(generation));
    const logBuf = (await readIfExists(logPath)) ?? Buffer.alloc(0);
    const scan = scanFrames(logBuf, logPath);
    const records: R[] = [];
    let offset = 0;
    for (const value of scan.values) {
      records.push(DurableStore.parse(opts.parseRecord, value, logPath, offset));
      offset += FRAME_HEADER_BYTES + logBuf.readUInt32LE(offset);
    }

    // Repairs: cut the torn tail, drop leftovers of unfinished or superseded snapshots.
    const log = await open(logPath, 'a', PRIVATE_FILE_MODE);
    try {
      if (scan.tornBytes > 0) {
        await log.truncate(scan.goodBytes);
        if (fsync) await log.sync();
      }
      const filesRemoved: string[] = [];
      const obsolete = [
        ...tmps,
        ...snapshots.filter((g) => g < generation).map(snapshotFileName),
        ...logs.filter((g) => g < generation).map(logFileName),
      ];
      for (const name of obsolete) {
        await unlink(join(dir, name));
        filesRemoved.push(name);
      }
      if (fsync) await fsyncDir(dir);
      const store = new DurableStore<S, R>({
        dir,
        fsync,
        generation,
        log,
        lock,
        logBytes: scan.goodBytes,
        logRecords: records.length,
      });
      return {
        store,
        snapshot,
        records,
        recovery: { tornBytesDropped: scan.tornBytes, recordsReplayed: records.length, generation, filesRemoved },
      };
    } catch (err) {
      await log.close();
      throw err;
    }
  }

  private static parse<T>(parse: ((v: unknown) => T) | undefined, value: unknown, file: string, offset: number): T {
    if (parse === undefined) return value as T;
    try {
      return parse(value);
    } catch (err) {
      throw new StoreCorruptError(file, offset, `the record was rejected by its parser: ${String(err)}`, {
        cause: err,
      });
    }
  }

  /** Current generation (number of snapshots taken over the store's life). */
  get currentGeneration(): number {
    return this.generation;
  }

  /** Bytes in the current log; a hint for when to take a snapshot. */
  get logBytes(): number {
    return this.bytesInLog;
  }

  /** Records appended since the last snapshot. */
  get logRecords(): number {
    return this.recordsInLog;
  }

  /** Appends one record; resolves once it is written and fsynced. */
  append(record: R): Promise<void> {
    return this.appendMany([record]);
  }

  /** Appends records in order with one write and one fsync; resolves once all are durable. */
  appendMany(records: readonly R[]): Promise<void> {
    try {
      this.assertUsable();
      const frames = records.map((r) => encodeFrame(r));
      for (const frame of frames) {
        if (frame.length - FRAME_HEADER_BYTES > MAX_RECORD_BYTES) {
          throw new AgentError(
            'AGENT_ERR_STORE_RECORD_TOO_LARGE',
            `record of ${frame.length - FRAME_HEADER_BYTES} bytes exceeds the limit of ${MAX_RECORD_BYTES}; ` +
              `store large data in files and append a reference instead`,
          );
        }
      }
      if (frames.length === 0) return this.enqueue(async () => undefined);
      const batch = this.pending ?? this.newBatch();
      batch.frames.push(...frames);
      return batch.done;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private newBatch(): Batch {
    const batch: Batch = { frames: [], done: Promise.resolve() };
    this.pending = batch;
    batch.done = this.enqueue(async () => {
      if (this.pending === batch) this.pending = undefined;
      this.assertNotFailed();
      const buf = batch.frames.length === 1 ? batch.frames[0]! : Buffer.concat(batch.frames);
      try {
        await writeAll(this.log, buf);
        if (this.fsync) await this.log.datasync();
      } catch (err) {
        this.failure = err;
        throw this.failedError();
      }
      this.bytesInLog += buf.length;
      this.recordsInLog += batch.frames.length;
    });
    return batch;
  }

  /**
   * Atomically replaces the snapshot with `state` and starts a new, empty log.
   * `state` must include the effect of every record appended before this call.
   * Resolves once the new snapshot is durable.
   */
  snapshot(state: S): Promise<void> {
    try {
      this.assertUsable();
    } catch (err) {
      return Promise.reject(err);
    }
    const frame = encodeFrame(state);
    // Appends made after this call must land in the new log, not join a batch
    // still waiting to be written to the old one (which the snapshot supersedes).
    this.pending = undefined;
    return this.enqueue(async () => {
      this.assertNotFailed();
      const from = this.generation;
      const to = from + 1;
      const finalPath = join(this.dir, snapshotFileName(to));
      const tmpPath = `${finalPath}.tmp`;
      try {
        const tmp = await open(tmpPath, 'w', PRIVATE_FILE_MODE);
        try {
          await writeAll(tmp, frame);
          if (this.fsync) await tmp.sync();
        } finally {
          await tmp.close();
        }
        await rename(tmpPath, finalPath);
        if (this.fsync) await fsyncDir(this.dir);
        // Commit point passed: generation `to` is the truth from here on.
        const next = await open(join(this.dir, logFileName(to)), 'a', PRIVATE_FILE_MODE);
        const old = this.log;
        this.log = next;
        this.generation = to;
        this.bytesInLog = 0;
        this.recordsInLog = 0;
        if (this.fsync) await fsyncDir(this.dir);
        await old.close();
      } catch (err) {
        this.failure = err;
        throw this.failedError();
      }
      // Superseded files; if this fails they are removed by the next open.
      await unlink(join(this.dir, logFileName(from))).catch(() => undefined);
      if (from > 0) await unlink(join(this.dir, snapshotFileName(from))).catch(() => undefined);
    });
  }

  /** Waits for pending appends, closes the log and releases the directory lock. */
  close(): Promise<void> {
    if (this.closed) return this.queue;
    this.closed = true;
    return this.enqueue(async () => {
      await this.log.close().catch(() => undefined);
      await this.lock.release();
    });
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    const run = this.queue.then(op);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private assertUsable(): void {
    if (this.closed) {
      throw new AgentError('AGENT_ERR_STORE_CLOSED', `the store in ${this.dir} is closed; open it again to write`);
    }
    this.assertNotFailed();
  }

  private assertNotFailed(): void {
    if (this.failure !== undefined) throw this.failedError();
  }

  private failedError(): AgentError {
    return new AgentError(
      'AGENT_ERR_STORE_FAILED',
      `a write to the store in ${this.dir} failed (${String(this.failure)}); the store refuses further writes. ` +
        `Fix the cause (disk full? permissions?) and restart the agent: recovery drops any partial record.`,
      { cause: this.failure },
    );
  }
}
