/**
 * `rhizome logs`, the pure half: one log record as a line for people (time,
 * level, unit, run, message, then fields, durations in ms with a precision
 * that fits their size; an exec/Ansible step's captured output indented
 * below it), merging by time, and the units a `--include/--exclude`
 * selection keeps.
 */
import { createColors } from 'picocolors';
import type { LogRecord } from '../../log/log-tail';

const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** A duration for people: `0.42 ms`, `3.4 ms`, `123 ms`, `12.23 s`, `3 min 4 s`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const a = Math.abs(ms);
  if (Number.isInteger(ms) && a < 1000) return `${ms} ms`;
  if (a < 1) return `${ms.toFixed(2)} ms`;
  if (a < 10) return `${ms.toFixed(1)} ms`;
  if (a < 1000) return `${Math.round(ms)} ms`;
  if (a < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Fields every line shows in fixed places, or never (noise). */
const SHOWN = new Set(['level', 'time', 'msg', 'unit', 'runId', 'pid', 'stdout', 'stderr']);

function fieldText(key: string, value: unknown): string {
  if (typeof value === 'number' && /Ms$/.test(key)) return `${key.slice(0, -2)}=${formatDuration(value)}`;
  if (typeof value === 'string') return `${key}=${/\s/.test(value) || value === '' ? JSON.stringify(value) : value}`;
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return `${key}=[${value.join(' ')}]`;
  return `${key}=${JSON.stringify(value)}`;
}

export interface FormatLogOptions {
  readonly color?: boolean;
}

/** One record as text: a line, plus the step's output (if any) indented below. */
export function formatLogRecord(r: LogRecord, opts: FormatLogOptions = {}): string {
  const c = createColors(opts.color === true);
  const time = new Date(r.time).toISOString().slice(11, 23);
  const level = (LEVEL_NAMES[r.level] ?? String(r.level)).padEnd(5);
  const paintLevel = r.level >= 50 ? c.red(level) : r.level >= 40 ? c.yellow(level) : r.level <= 20 ? c.dim(level) : level;
  const msg = r.msg ?? '';
  // Quiet fields: empty lists, a first attempt, and strings the message already says.
  const quiet = (k: string, v: unknown): boolean =>
    (Array.isArray(v) && v.length === 0) || (k === 'attempt' && v === 1) || (typeof v === 'string' && v !== '' && msg.includes(v));
  const fields = Object.entries(r)
    .filter(([k, v]) => !SHOWN.has(k) && v !== undefined && !quiet(k, v))
    .map(([k, v]) => fieldText(k, v));
  const head = `${c.dim(time)} ${paintLevel} ${c.cyan(r.unit ?? '-')}${r.runId ? c.dim(` [${r.runId}]`) : ''} ${r.msg ?? ''}${fields.length > 0 ? c.dim(`  ${fields.join(' ')}`) : ''}`;
  const out = [head];
  for (const stream of ['stdout', 'stderr'] as const) {
    const text = r[stream];
    if (typeof text !== 'string' || text === '') continue;
    for (const line of text.replace(/\n$/, '').split('\n')) out.push(c.dim(`    ${stream === 'stderr' ? '!' : '|'} ${line}`));
  }
  return out.join('\n');
}

/** Records of several units in one list, by time (stable: equal times keep their order). */
export function mergeByTime(lists: readonly (readonly LogRecord[])[]): LogRecord[] {
  return lists.flat().sort((a, b) => a.time - b.time);
}

/**
 * Holds records that arrive live from several units for `holdMs`, then
 * releases them in time order, so lines of different units interleave by
 * time although each unit's stream arrives on its own schedule. Bounded: at
 * most `max` records are held (the oldest are released early beyond that).
 */
export class TimeOrderedBuffer {
  private held: LogRecord[] = [];
  constructor(
    private readonly holdMs = 300,
    private readonly max = 5_000,
  ) {}

  push(r: LogRecord): LogRecord[] {
    this.held.push(r);
    return this.held.length > this.max ? this.take(this.held.length - this.max) : [];
  }

  /** Records older than `now - holdMs`, in time order. */
  release(now: number): LogRecord[] {
    this.held.sort((a, b) => a.time - b.time);
    const i = this.held.findIndex((r) => r.time > now - this.holdMs);
    return this.take(i === -1 ? this.held.length : i);
  }

  /** Everything still held, in time order. */
  drain(): LogRecord[] {
    return this.release(Infinity);
  }

  private take(n: number): LogRecord[] {
    this.held.sort((a, b) => a.time - b.time);
    return this.held.splice(0, n);
  }
}

/** `--include`/`--exclude` over unit and service names: which of `units` to read. */
export function selectUnits(units: readonly string[], include: readonly string[], exclude: readonly string[]): string[] {
  const matches = (unit: string, names: readonly string[]): boolean => names.some((n) => n === unit || n === unit.split('/')[0]);
  return units.filter((u) => (include.length === 0 || matches(u, include)) && !matches(u, exclude));
}
