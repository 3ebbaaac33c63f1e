/**
 * LogTail: the last `capacity` log records in memory, for the control API's
 * log stream (`rhizome logs`): replay what happened recently, then follow.
 *
 * It is a pino destination (`write(line)`), so the logger feeds it directly.
 * Memory is bounded three ways: at most `capacity` records are kept (oldest
 * evicted first), a record longer than `maxRecordBytes` is cut to a stub, and
 * every follower has its own queue of at most `capacity` records: a reader too
 * slow to keep up loses the oldest ones and is told how many it missed.
 */
import { AgentError } from '../errors';

export interface LogRecord {
  level: number;
  time: number;
  msg?: string;
  unit?: string;
  runId?: string;
  [key: string]: unknown;
}

export interface LogTailOptions {
  capacity?: number;
  maxRecordBytes?: number;
}

export const DEFAULT_LOG_TAIL_OPTIONS = Object.freeze({
  /** Enough for the story of several runs; about 1 MB at typical line sizes. */
  capacity: 2000,
  /** A record bigger than this (a dumped relation bag?) is kept as a stub. */
  maxRecordBytes: 16 * 1024,
});

export interface LogFilter {
  /** Only records of this run. */
  runId?: string;
  /** Only records at or above this pino level number (30 = info). */
  minLevel?: number;
}

export interface FollowOptions extends LogFilter {
  /** Ends the iteration (e.g. when the HTTP client disconnects). */
  signal: AbortSignal;
  /** How many recent records to replay first (default: all kept). */
  replay?: number;
}

function matches(record: LogRecord, filter: LogFilter): boolean {
  if (filter.runId !== undefined && record.runId !== filter.runId) return false;
  if (filter.minLevel !== undefined && record.level < filter.minLevel) return false;
  return true;
}

interface Follower {
  queue: LogRecord[];
  missed: number;
  wake: (() => void) | undefined;
  filter: LogFilter;
}

export class LogTail {
  readonly capacity: number;
  private readonly maxRecordBytes: number;
  private readonly ring: (LogRecord | undefined)[];
  private next = 0;
  private count = 0;
  private evictedTotal = 0;
  private readonly followers = new Set<Follower>();

  constructor(opts: LogTailOptions = {}) {
    this.capacity = opts.capacity ?? DEFAULT_LOG_TAIL_OPTIONS.capacity;
    this.maxRecordBytes = opts.maxRecordBytes ?? DEFAULT_LOG_TAIL_OPTIONS.maxRecordBytes;
    if (!Number.isSafeInteger(this.capacity) || this.capacity < 1) {
      throw new AgentError('AGENT_ERR_BAD_OPTIONS', 'LogTail: `capacity` must be a positive integer');
    }
    this.ring = new Array<LogRecord | undefined>(this.capacity);
  }

  /** Records kept now. */
  get size(): number {
    return this.count;
  }

  /** Records evicted so far to stay within capacity. */
  get evicted(): number {
    return this.evictedTotal;
  }

  /** pino destination interface: one JSON line per call. */
  write(line: string): void {
    this.push(this.parseLine(line));
  }

  private parseLine(line: string): LogRecord {
    if (line.length > this.maxRecordBytes) {
      const level = /"level":(\d+)/.exec(line)?.[1];
      const time = /"time":(\d+)/.exec(line)?.[1];
      const runId = /"runId":"([^"]{1,200})"/.exec(line)?.[1];
      return {
        level: level === undefined ? 30 : Number(level),
        time: time === undefined ? Date.now() : Number(time),
        msg: `${line.slice(0, 200)}… (record of ${line.length} bytes cut)`,
        truncated: true,
        ...(runId === undefined ? {} : { runId }),
      };
    }
    try {
      const value = JSON.parse(line) as unknown;
      if (typeof value === 'object' && value !== null && typeof (value as LogRecord).level === 'number') {
        return value as LogRecord;
      }
    } catch {
      // fall through: not one of ours
    }
    return { level: 30, time: Date.now(), msg: line.trimEnd() };
  }

  /** Adds a record (and hands it to every follower). */
  push(record: LogRecord): void {
    if (this.count === this.capacity) this.evictedTotal++;
    else this.count++;
    this.ring[this.next] = record;
    this.next = (this.next + 1) % this.capacity;
    for (const f of this.followers) {
      if (!matches(record, f.filter)) continue;
      f.queue.push(record);
      if (f.queue.length > this.capacity) {
        f.queue.shift();
        f.missed++;
      }
      f.wake?.();
    }
  }

  /** The most recent records, oldest first. */
  recent(opts: LogFilter & { limit?: number } = {}): LogRecord[] {
    const out: LogRecord[] = [];
    const start = (this.next - this.count + this.capacity) % this.capacity;
    for (let i = 0; i < this.count; i++) {
      const record = this.ring[(start + i) % this.capacity]!;
      if (matches(record, opts)) out.push(record);
    }
    return opts.limit === undefined ? out : out.slice(Math.max(0, out.length - opts.limit));
  }

  /**
   * Replays recent records, then yields new ones as they are logged, until
   * `signal` aborts. A follower that falls `capacity` records behind gets a
   * warning record saying how many it missed.
   */
  async *follow(opts: FollowOptions): AsyncGenerator<LogRecord> {
    const filter: LogFilter = {
      ...(opts.runId === undefined ? {} : { runId: opts.runId }),
      ...(opts.minLevel === undefined ? {} : { minLevel: opts.minLevel }),
    };
    const follower: Follower = { queue: [], missed: 0, wake: undefined, filter };
    // Subscribe before replaying so nothing logged in between is lost.
    const replay = this.recent({ ...filter, ...(opts.replay === undefined ? {} : { limit: opts.replay }) });
    this.followers.add(follower);
    const onAbort = (): void => follower.wake?.();
    opts.signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (const record of replay) {
        if (opts.signal.aborted) return;
        yield record;
      }
      while (!opts.signal.aborted) {
        if (follower.missed > 0) {
          const missed = follower.missed;
          follower.missed = 0;
          yield { level: 40, time: Date.now(), msg: `log stream skipped ${missed} record(s): the reader was too slow` };
          continue;
        }
        const record = follower.queue.shift();
        if (record !== undefined) {
          yield record;
          continue;
        }
        await new Promise<void>((resolve) => {
          follower.wake = resolve;
        });
        follower.wake = undefined;
      }
    } finally {
      opts.signal.removeEventListener('abort', onAbort);
      this.followers.delete(follower);
    }
  }

  /** Number of active followers (for tests and status). */
  get followerCount(): number {
    return this.followers.size;
  }
}
