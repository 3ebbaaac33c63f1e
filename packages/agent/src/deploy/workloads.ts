/**
 * A unit's workload daemons never outlive it. A charm declares the daemons
 * it starts by their pid files (`CharmDefinition.workloads`); when the CLI
 * starts a unit it writes that declaration to the unit's data directory
 * (`workloads.json`), so that later, with the agent dead (SIGKILLed, or
 * crashed), `destroy` and `stop` can still find and end them without
 * loading the charm:
 *
 *   for each declared pid file whose pid is provably that workload
 *   (process-identity.ts): SIGTERM; after `termTimeoutMs`, SIGKILL (its
 *   process group when it leads one, so a daemon's workers go too); give up
 *   after `killTimeoutMs` more.
 *
 * Every outcome is reported (the CLI prints it): stopped, not running, or
 * left alone because the pid is no longer the workload's.
 */
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { UnitContext, WorkloadPidFile } from '../charm/define';
import { writeJsonAtomic } from '../agent-info';
import { isWorkloadDataDir } from '../charm/workload-data-dir';
import { checkOwnership, readProcess, stillRunning, type ProcessInfo } from './process-identity';
import { readIfExists } from '../persistence/read-if-exists';

/** The file (in a unit's data dir) listing its workload daemons. */
export const WORKLOADS_FILE = 'workloads.json';

export interface WorkloadManifest {
  readonly unit: string;
  readonly workloads: readonly WorkloadPidFile[];
}

/** Where a unit lives: what `recordWorkloads` needs to evaluate its charm's declaration. */
export interface UnitPlacement {
  readonly unit: string;
  readonly service: string;
  readonly charmDir: string;
  /** The compiled charm (charm/compile.ts); without it the charm is loaded as `loadCharm` does. */
  readonly charmModule?: string | undefined;
  readonly dataDir: string;
  readonly options: UnitContext['config'];
}

const quietLog: UnitContext['log'] = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

/**
 * Evaluates the unit's charm's `workloads(unit)` (with the UnitContext the
 * agent will build) and writes `workloads.json`; removes it when the charm
 * declares none. Throws AGENT_ERR_CHARM_LOAD for a charm or declaration
 * that does not load.
 */
export async function recordWorkloads(u: UnitPlacement): Promise<readonly WorkloadPidFile[]> {
  const { loadCharm, declaredWorkloads } = await import('../charm/load');
  const charm = await loadCharm(u.charmDir, u.charmModule);
  const config = Object.freeze({ ...(charm.definition.config ?? {}), ...u.options });
  const unit: UnitContext = Object.freeze({ unit: u.unit, service: u.service, dir: join(u.dataDir, 'unit'), address: '127.0.0.1', config, log: quietLog });
  const workloads = declaredWorkloads(charm, unit);
  await writeWorkloadManifest(u.dataDir, u.unit, workloads);
  return workloads;
}

/** Writes `workloads.json` in `dataDir` (removes it when there are none). The agent also calls it at start. */
export async function writeWorkloadManifest(dataDir: string, unit: string, workloads: readonly WorkloadPidFile[]): Promise<void> {
  const file = join(dataDir, WORKLOADS_FILE);
  if (workloads.length === 0) await rm(file, { force: true });
  else await writeJsonAtomic(file, { unit, workloads } satisfies WorkloadManifest);
}

export interface WorkloadReport {
  readonly unit: string;
  readonly name: string;
  readonly pidFile: string;
  /** The pid its pid file named, when it named one. */
  readonly pid?: number;
  /**
   * terminated: ended by SIGTERM; killed: needed SIGKILL; not-running: no
   * pid file, or its pid is not running; left-alone: the pid is someone
   * else's now; survived: still running after SIGKILL; unreadable: the
   * unit's workloads.json is damaged; data-removed / data-kept: what
   * became of its declared `dataDir` when the unit went for good.
   */
  readonly outcome: 'terminated' | 'killed' | 'not-running' | 'left-alone' | 'survived' | 'unreadable' | 'data-removed' | 'data-kept';
  /** One sentence for people. */
  readonly detail: string;
}

export interface StopWorkloadsOptions {
  /** How long a workload has to exit after SIGTERM (default 10 s). */
  readonly termTimeoutMs?: number;
  /** How long after SIGKILL before giving up (default 5 s). */
  readonly killTimeoutMs?: number;
  /** The unit goes for good: also remove each stopped workload's declared `dataDir`. */
  readonly removeData?: boolean;
}

export const DEFAULT_STOP_WORKLOADS_OPTIONS = Object.freeze({ termTimeoutMs: 10_000, killTimeoutMs: 5_000 });

/** The unit's recorded workloads; undefined when it has none. Throws on a damaged file. */
export async function readWorkloadManifest(dataDir: string): Promise<WorkloadManifest | undefined> {
  const file = join(dataDir, WORKLOADS_FILE);
  const text = await readIfExists(file, 'utf8');
  if (text === undefined) return undefined;
  const m = JSON.parse(text) as WorkloadManifest;
  const valid =
    typeof m?.unit === 'string' &&
    Array.isArray(m.workloads) &&
    m.workloads.every(
      (w) =>
        typeof w?.name === 'string' &&
        typeof w.pidFile === 'string' &&
        Array.isArray(w.cmdline) &&
        w.cmdline.length > 0 &&
        w.cmdline.every((c: unknown) => typeof c === 'string' && c !== '') &&
        (w.dataDir === undefined || typeof w.dataDir === 'string'),
    );
  if (!valid) throw new Error('expected { unit, workloads: [{ name, pidFile, cmdline: [..], dataDir? }] }');
  return m;
}

/** Stops every recorded workload of a unit whose agent is gone (see the file header). */
export async function stopUnitWorkloads(u: { readonly unit: string; readonly dataDir: string }, opts: StopWorkloadsOptions = {}): Promise<WorkloadReport[]> {
  let manifest: WorkloadManifest | undefined;
  try {
    manifest = await readWorkloadManifest(u.dataDir);
  } catch (err) {
    const file = join(u.dataDir, WORKLOADS_FILE);
    return [{ unit: u.unit, name: WORKLOADS_FILE, pidFile: file, outcome: 'unreadable', detail: `${file} is damaged (${(err as Error).message}): its workloads, if any still run, must be stopped by hand` }];
  }
  if (!manifest) return [];
  const reports = await Promise.all(
    manifest.workloads.map(async (w) => {
      const stopped = await stopWorkload(u.unit, w, opts);
      return opts.removeData && w.dataDir !== undefined ? [stopped, await removeWorkloadData(u.unit, w, w.dataDir, stopped)] : [stopped];
    }),
  );
  return reports.flat();
}

/**
 * Removes a stopped workload's declared data directory. Refused for a
 * daemon that may still write to it, and for a path too short to be one
 * workload's own (`/`, `/var`, `/var/lib`: a charm's mistake must not wipe
 * a host).
 */
async function removeWorkloadData(unit: string, w: WorkloadPidFile, dir: string, stopped: WorkloadReport): Promise<WorkloadReport> {
  const base = { unit, name: w.name, pidFile: w.pidFile };
  if (stopped.outcome === 'survived' || stopped.outcome === 'left-alone') {
    return { ...base, outcome: 'data-kept', detail: `kept ${w.name}'s data ${dir}: ${w.name} may still run (${stopped.outcome}); remove it by hand once it is stopped` };
  }
  if (!isWorkloadDataDir(dir)) {
    return { ...base, outcome: 'data-kept', detail: `kept ${w.name}'s data "${dir}": a workload's dataDir is an absolute, normalized path at least three levels deep` };
  }
  try {
    await rm(dir, { recursive: true, force: true });
    return { ...base, outcome: 'data-removed', detail: `removed ${w.name}'s data ${dir}` };
  } catch (err) {
    return { ...base, outcome: 'data-kept', detail: `could not remove ${w.name}'s data ${dir}: ${(err as Error).message}` };
  }
}

/** Stops one workload if its pid file names a process that is provably it. */
export async function stopWorkload(unit: string, w: WorkloadPidFile, opts: StopWorkloadsOptions = {}): Promise<WorkloadReport> {
  const termTimeoutMs = opts.termTimeoutMs ?? DEFAULT_STOP_WORKLOADS_OPTIONS.termTimeoutMs;
  const killTimeoutMs = opts.killTimeoutMs ?? DEFAULT_STOP_WORKLOADS_OPTIONS.killTimeoutMs;
  const base = { unit, name: w.name, pidFile: w.pidFile };
  let text: string;
  let writtenAtMs: number;
  try {
    [text, writtenAtMs] = await Promise.all([readFile(w.pidFile, 'utf8'), stat(w.pidFile).then((s) => s.mtimeMs)]);
  } catch {
    return { ...base, outcome: 'not-running', detail: `${w.name} is not running (no pid file ${w.pidFile})` };
  }
  // The first line: some daemons (PostgreSQL's postmaster.pid) write more after the pid.
  const pid = Number(text.trim().split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0) return { ...base, outcome: 'not-running', detail: `${w.name} is not running (${w.pidFile} holds no pid)` };
  const proc = await readProcess(pid);
  if (!proc) return { ...base, pid, outcome: 'not-running', detail: `${w.name} is not running (pid ${pid} of ${w.pidFile} has exited)` };
  const owner = checkOwnership(proc, { cmdline: w.cmdline, pidFileWrittenAtMs: writtenAtMs });
  if (!owner.owned) return { ...base, pid, outcome: 'left-alone', detail: `left pid ${pid} alone: ${owner.reason}; it is not ${unit}'s ${w.name}` };

  signal(proc.pid, 'SIGTERM');
  if (await exited(proc, termTimeoutMs)) return { ...base, pid, outcome: 'terminated', detail: `stopped ${w.name} (pid ${pid}) with SIGTERM` };
  // Still the same process (same start time) after the wait: no pid reuse can have happened in between.
  const group = proc.pgrp === proc.pid;
  if (group) signal(-proc.pid, 'SIGKILL');
  else signal(proc.pid, 'SIGKILL');
  const how = `SIGKILL${group ? ' to its process group' : ''}, ${Math.round(termTimeoutMs / 1000)} s after SIGTERM`;
  if (await exited(proc, killTimeoutMs)) return { ...base, pid, outcome: 'killed', detail: `stopped ${w.name} (pid ${pid}) with ${how}` };
  return { ...base, pid, outcome: 'survived', detail: `${w.name} (pid ${pid}) still runs after ${how}` };
}

/** Human lines for the reports worth showing (every outcome but not-running). */
export function describeWorkloadReports(reports: readonly WorkloadReport[]): string[] {
  return reports.filter((r) => r.outcome !== 'not-running').map((r) => `${r.unit}: ${r.detail}`);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // exited meanwhile
  }
}

async function exited(proc: ProcessInfo, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!(await stillRunning(proc))) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What `destroy` and `stop` did to the workloads units left behind (every declared one, `not-running` included). */
export interface WorkloadsStopped {
  readonly workloads: WorkloadReport[];
}
