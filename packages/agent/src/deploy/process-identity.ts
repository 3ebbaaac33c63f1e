/**
 * Is this pid still the workload its pid file named? A pid file outlives
 * its daemon when the daemon is SIGKILLed, and the kernel hands the pid to
 * the next process: signalling it blindly could kill anything. A pid is
 * taken to be the workload only when, per /proc (Linux):
 *   - it is a live process (not a zombie);
 *   - its command line contains every string the charm declared (e.g.
 *     `nginx` and the unit's dir);
 *   - it started no later than its pid file was last written: the daemon
 *     writes the file after it starts, a reused pid starts afterwards.
 * The start time is `btime` (whole seconds, rounded down) + the process's
 * start ticks, so it is never later than the real start: the true owner
 * always passes; one second of slack absorbs clock adjustments.
 */
import { readFile } from 'node:fs/promises';

/** What /proc says about one process. */
export interface ProcessInfo {
  readonly pid: number;
  /** One letter: R running, S sleeping, D disk wait, T stopped, Z zombie... */
  readonly state: string;
  /** Its process group: a daemon that called setsid() leads its own (its workers are in it). */
  readonly pgrp: number;
  /** Start time in clock ticks after boot (field 22 of /proc/PID/stat): with the pid, identifies the process. */
  readonly startTicks: number;
  /** Start time as wall-clock ms (never later than the real start). */
  readonly startedAtMs: number;
  /** Its arguments joined by spaces (a daemon may have rewritten them into a title). */
  readonly cmdline: string;
}

/** USER_HZ: the unit of /proc/PID/stat times; 100 on every Linux architecture Node supports. */
const CLOCK_TICKS_PER_SECOND = 100;
/** Tolerated disagreement between the clock that stamped the pid file and the start time. */
export const START_TIME_SLACK_MS = 1_000;

let bootTimeMs: number | undefined;
async function bootTime(): Promise<number> {
  if (bootTimeMs === undefined) {
    const match = /^btime\s+(\d+)$/m.exec(await readFile('/proc/stat', 'utf8'));
    if (!match) throw new Error('/proc/stat has no btime line');
    bootTimeMs = Number(match[1]) * 1000;
  }
  return bootTimeMs;
}

/** The live process with this pid, or undefined when there is none (or only its zombie). */
export async function readProcess(pid: number): Promise<ProcessInfo | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  let stat: string;
  let cmdline: string;
  try {
    [stat, cmdline] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), readFile(`/proc/${pid}/cmdline`, 'utf8')]);
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0] ?? '?';
  if (state === 'Z' || state === 'X') return undefined;
  const startTicks = Number(fields[19]);
  return {
    pid,
    state,
    pgrp: Number(fields[2]),
    startTicks,
    startedAtMs: (await bootTime()) + (startTicks * 1000) / CLOCK_TICKS_PER_SECOND,
    cmdline: cmdline.split('\0').filter((a) => a !== '').join(' '),
  };
}

/** The same process as `before` (same pid and start time) if it still runs. */
export async function stillRunning(before: ProcessInfo): Promise<boolean> {
  const now = await readProcess(before.pid);
  return now !== undefined && now.startTicks === before.startTicks;
}

export interface WorkloadIdentity {
  /** Strings the command line must all contain. */
  readonly cmdline: readonly string[];
  /** When the pid file naming the process was last written (ms). */
  readonly pidFileWrittenAtMs: number;
}

export type Ownership = { readonly owned: true } | { readonly owned: false; readonly reason: string };

/** Whether `proc` is the workload described by `identity` (see the file header). */
export function checkOwnership(proc: ProcessInfo, identity: WorkloadIdentity): Ownership {
  const missing = identity.cmdline.filter((s) => !proc.cmdline.includes(s));
  if (missing.length > 0) {
    return { owned: false, reason: `its command line "${clip(proc.cmdline)}" does not contain ${missing.map((s) => `"${s}"`).join(', ')}` };
  }
  if (proc.startedAtMs > identity.pidFileWrittenAtMs + START_TIME_SLACK_MS) {
    return {
      owned: false,
      reason: `it started at ${new Date(proc.startedAtMs).toISOString()}, after its pid file was written (${new Date(identity.pidFileWrittenAtMs).toISOString()}): the pid was reused`,
    };
  }
  return { owned: true };
}

/** A command line for a one-line message. */
function clip(text: string, max = 160): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length > max ? `${line.slice(0, max)}...` : line;
}
