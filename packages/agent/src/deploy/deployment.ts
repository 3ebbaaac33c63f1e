/**
 * The deployment state file, `<home>/<name>/deployment.json`: what `deploy`
 * started, so that later commands (`status`, `kill`, `start`, `add-unit`,
 * `destroy`) find the units, their data directories, control URLs and pids
 * without flags. `<home>` is `--home`, else $RHIZOME_HOME, else `./.rhizome`.
 * The most recently written deployment is the default one.
 *
 * The file is only a cache of where things are: each agent's own
 * `agent.json` (in its data dir) is the truth about a running unit, and is
 * re-read whenever a unit is (re)started.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { AGENT_INFO_FILE, writeJsonAtomic, type AgentInfo } from '../agent-info';
import { AgentError } from '../errors';
import { readProcess, START_TIME_SLACK_MS } from './process-identity';
import { readToken } from '../control/token-file';
import { ControlClient } from '../control/client';
import type { DeployedUnit, Deployment } from './deployment-record';

export const DEPLOYMENT_FILE = 'deployment.json';

export type { DeployedUnit, Deployment, MachineRecord } from './deployment-record';

export function rhizomeHome(explicit?: string): string {
  return resolve(explicit ?? process.env['RHIZOME_HOME'] ?? '.rhizome');
}

export function deploymentDir(home: string, name: string): string {
  return join(home, name);
}

/** The deployment's cluster label: agents of two deployments never merge. */
export function deploymentLabel(d: Pick<Deployment, 'name'>): string {
  return `rhizome-${d.name}`;
}

/** `namenode/0` -> `namenode-0` (a directory name). */
export function unitDirName(unit: string): string {
  return unit.replace(/\//g, '-');
}

export async function writeDeployment(d: Deployment): Promise<void> {
  await writeJsonAtomic(join(deploymentDir(d.home, d.name), DEPLOYMENT_FILE), d);
}

/** The deployment `name`, else the most recently written one in `home`. */
export async function resolveDeploymentName(home: string, name?: string): Promise<string> {
  let chosen = name;
  if (chosen === undefined) {
    let entries: string[] = [];
    try {
      entries = await readdir(home);
    } catch (err) {
      // Not "no deployment": one may well be there, written by another user (deploy ran as root).
      if (isPermissionError(err)) throw permissionError(home, err);
      entries = [];
    }
    let best: { name: string; mtime: number } | undefined;
    for (const e of entries) {
      try {
        const s = await stat(join(home, e, DEPLOYMENT_FILE));
        if (!best || s.mtimeMs > best.mtime) best = { name: e, mtime: s.mtimeMs };
      } catch {
        // not a deployment
      }
    }
    if (!best) {
      throw new AgentError('AGENT_ERR_NOT_RUNNING', `no deployment found in ${home}; run 'rhizome deploy BUNDLE' first, or point at an agent with --data-dir DIR or --agent URL --token T`);
    }
    chosen = best.name;
  }
  return chosen;
}

const isPermissionError = (err: unknown): boolean => ['EACCES', 'EPERM'].includes(String((err as NodeJS.ErrnoException).code));

/** Not "no deployment": there may well be one, written by another user (deploy run as root, status as someone else). */
function permissionError(path: string, cause: unknown): AgentError {
  let user = 'this user';
  try {
    user = `user ${userInfo().username}`;
  } catch {
    // no passwd entry
  }
  return new AgentError(
    'AGENT_ERR_PERMISSION',
    `cannot read ${path}: permission denied to ${user} (a deployment's files are readable only by the user who ran 'rhizome deploy'); run rhizome as that user, or use another home with --home DIR (or $RHIZOME_HOME)`,
    { cause },
  );
}

export async function readDeployment(home: string, name?: string): Promise<Deployment> {
  const chosen = await resolveDeploymentName(home, name);
  const file = join(deploymentDir(home, chosen), DEPLOYMENT_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (isPermissionError(err)) throw permissionError(file, err);
    throw new AgentError('AGENT_ERR_NOT_RUNNING', `no deployment "${chosen}" in ${home} (${file} is missing)`, { cause: err });
  }
  let d: Deployment;
  try {
    d = JSON.parse(text) as Deployment;
    if (typeof d.name !== 'string' || typeof d.units !== 'object' || d.units === null) throw new Error('missing name or units');
  } catch (err) {
    throw new AgentError('AGENT_ERR_BAD_OPTIONS', `${file} is damaged (${(err as Error).message}); destroy the deployment's processes by pid and deploy again`, { cause: err });
  }
  await refreshUnits(d);
  return d;
}

/**
 * Reads the deployment, lets `change` modify it, and writes it back, all
 * under the deployment's record lock: concurrent CLI commands never lose
 * each other's updates (see record-lock.ts). Keep `change` short: no agent
 * start or stop inside.
 */
export async function updateDeployment<T>(home: string, name: string, change: (d: Deployment) => T | Promise<T>): Promise<T> {
  // Loaded by writers only: readers (`rhizome status`) do not pay for the lock's node:crypto.
  const { DEFAULT_LOCK_WAIT, RECORD_LOCK_FILE, withLockFile } = await import('./record-lock');
  return withLockFile(deploymentDir(home, name), RECORD_LOCK_FILE, `the record of deployment "${name}"`, DEFAULT_LOCK_WAIT.recordMs, async () => {
    const d = await readDeployment(home, name);
    const result = await change(d);
    await writeDeployment(d);
    return result;
  });
}

/** Runs one operation on a unit (start, kill, stop, remove) while no other command operates on it. */
export async function withUnitLock<T>(home: string, name: string, unit: string, fn: () => Promise<T>): Promise<T> {
  const { DEFAULT_LOCK_WAIT, unitLockFile, withLockFile } = await import('./record-lock');
  return withLockFile(deploymentDir(home, name), unitLockFile(unit), `unit ${unit}`, DEFAULT_LOCK_WAIT.unitMs, fn);
}

/** Takes the next unit number of `service` (never one used before in this deployment). */
export function allocateUnitNumber(d: Deployment, service: string): number {
  const used = Object.values(d.units)
    .filter((u) => u.service === service)
    .map((u) => Number(u.unit.split('/')[1]) + 1);
  const n = Math.max(d.nextUnit?.[service] ?? 0, 0, ...used);
  d.nextUnit = { ...(d.nextUnit ?? {}), [service]: n + 1 };
  return n;
}

/**
 * Brings each unit's record up to date from its own agent.json (the truth
 * about a running agent): a unit restarted by other means (a supervisor, a
 * test) is found at its new pid and addresses.
 */
export async function refreshUnits(d: Deployment): Promise<void> {
  const remote = Object.values(d.units).filter((u) => u.ssh !== undefined);
  if (remote.length > 0) {
    const { refreshRemoteUnits } = await import('./remote');
    await refreshRemoteUnits(remote);
  }
  await Promise.all(
    Object.values(d.units).map(async (u) => {
      if (u.ssh !== undefined) return;
      if (u.pid > 0 && u.pidStartTicks !== undefined) {
        const holder = await readProcess(u.pid);
        // Our agent died and its pid belongs to another process now: never signal it. (A pid nobody holds stays: it is simply dead.)
        if (holder && holder.startTicks !== u.pidStartTicks) u.pid = 0;
      }
      const info = await readAgentInfo(u.dataDir);
      if (!info || info.pid === u.pid || !(await wroteAgentInfo(u.dataDir, info.pid))) return;
      await recordPid(u, info.pid);
      u.controlUrl = info.controlUrl;
      u.gossipAddress = info.gossipAddress;
      u.state = 'running';
    }),
  );
}

/**
 * Whether the live process `pid` is the agent that wrote the agent.json
 * naming it: it started before the file was written (a reused pid starts
 * after; see process-identity.ts).
 */
async function wroteAgentInfo(dataDir: string, pid: number): Promise<boolean> {
  const proc = await readProcess(pid);
  if (!proc) return false;
  try {
    return proc.startedAtMs <= (await stat(join(dataDir, AGENT_INFO_FILE))).mtimeMs + START_TIME_SLACK_MS;
  } catch {
    return false;
  }
}

/** Sets `u.pid` with the start time that identifies that process (see DeployedUnit.pidStartTicks). */
export async function recordPid(u: DeployedUnit, pid: number): Promise<void> {
  u.pid = pid;
  u.pidStartTicks = (await readProcess(pid))?.startTicks;
}

/** The unit, or AGENT_ERR_UNKNOWN_UNIT listing the units there are. */
export function unitOf(d: Deployment, unit: string): DeployedUnit {
  const u = d.units[unit];
  if (!u) {
    throw new AgentError('AGENT_ERR_UNKNOWN_UNIT', `unknown unit "${unit}" in deployment "${d.name}"; its units are ${Object.keys(d.units).sort().join(', ') || '(none)'}`);
  }
  return u;
}

export function isAlive(pid: number): boolean {
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether a unit's agent is alive: its local process, or what its machine said when the record was read. */
export function unitAlive(u: DeployedUnit): boolean {
  return u.ssh !== undefined ? u.alive === true : isAlive(u.pid);
}

/** Units whose process is alive (and that the CLI did not kill or stop). */
export function liveUnits(d: Deployment): DeployedUnit[] {
  return Object.values(d.units)
    .filter((u) => u.state === 'running' && unitAlive(u))
    .sort((a, b) => compareUnitNames(a.unit, b.unit));
}

export function compareUnitNames(a: string, b: string): number {
  const [sa, na] = a.split('/') as [string, string];
  const [sb, nb] = b.split('/') as [string, string];
  if (sa !== sb) return sa < sb ? -1 : 1;
  return Number(na) - Number(nb);
}

export async function readAgentInfo(dataDir: string): Promise<AgentInfo | undefined> {
  try {
    return JSON.parse(await readFile(join(dataDir, AGENT_INFO_FILE), 'utf8')) as AgentInfo;
  } catch {
    return undefined;
  }
}

/** A control client for a deployed unit (token from its data dir; a remote unit's through an SSH port forward). */
export async function clientFor(u: DeployedUnit, timeoutMs = 5_000): Promise<ControlClient> {
  if (u.ssh !== undefined) {
    const { remoteClient } = await import('./remote');
    return remoteClient(u, timeoutMs);
  }
  const token = await readToken(u.dataDir);
  return new ControlClient({ url: u.controlUrl, token, timeoutMs });
}
