/**
 * Rolling upgrade of a deployment's agents onto the installed release
 * (`rhizome upgrade-model`, after Juju's command of that name). Installing
 * a new rhizome changes nothing that runs: every agent keeps the code it
 * started with. This moves them, one unit at a time:
 *
 *   1. every live unit is asked its version; units already on this release
 *      (same version and, on an SSH machine, the same agent module) are
 *      left alone, so running it again after a failure goes on where it
 *      stopped; units not running are left for `start`, which starts them
 *      on this release anyway;
 *   2. this release is copied to every machine that has a unit to upgrade,
 *      before any unit restarts (a machine that cannot take it stops the
 *      upgrade with nothing restarted);
 *   3. machine by machine, unit by unit: the agent stops for a restart
 *      (SIGUSR2: it stays in the mesh, its charm's `stop` does not run and
 *      its workloads keep serving), starts again from its data directory on
 *      this release, and the deployment must converge (the unit back in
 *      every member list, relations established, views current) with no
 *      unit in error that was not in error before, and the unit must report
 *      this release's version, before the next unit goes;
 *   4. the first unit that does not come back stops the upgrade: on an SSH
 *      machine it is started again on the agent module it ran before (still
 *      in the machine's cache); every unit not reached yet keeps running the
 *      old release. Releases interoperate within their protocol version
 *      ranges, so a half-upgraded deployment keeps working.
 *
 * Nothing is lost by a restart: a committed run is durable before anything
 * it sends leaves, links resume from their persisted sequence numbers (no
 * message applied twice), and the new agent refuses a data directory whose
 * state format is newer than it understands (state/state-format.ts).
 */
import { AgentError } from '../errors';
import { agentVersion } from '../runtime';
import type { AgentStatus } from '../unit/api';
import { waitForConvergence } from './converge';
import { clientFor, compareUnitNames, readDeployment, resolveDeploymentName, unitAlive, withUnitLock, type DeployedUnit, type Deployment } from './deployment';
import { deploymentKeyringFile } from './keyring-sync';
import { machineOf } from './placement';
import { prepareMachine, releasePath } from './remote';
import { stopForRestart } from './restart-stop';
import { startUnit } from './unit-commands';
import { prepareCharm } from './validate';

export interface UpgradeOptions {
  readonly deployment?: string;
  /** How long each unit has to come back and the deployment to converge (default 120 s). */
  readonly timeoutMs?: number;
  readonly logLevel?: string;
  /** Restarted agents skip fsync (tests only). */
  readonly noFsync?: boolean;
  /** Called as each unit is reached and when it is done. */
  readonly onProgress?: (message: string) => void;
}

/** `pending`: not moved (yet): it runs the release it ran before. */
export type UnitUpgradeOutcome = 'upgraded' | 'already' | 'not-running' | 'failed' | 'pending';

export interface UnitUpgrade {
  readonly unit: string;
  /** The version the unit ran before ('' when it did not say: not running, or an agent too old to report it). */
  readonly from: string;
  /** The version it runs now, as far as known. */
  readonly now: string;
  readonly outcome: UnitUpgradeOutcome;
  readonly tookMs?: number;
  /** For `failed`: why, and what became of the unit. */
  readonly detail?: string;
}

export interface UpgradeReport {
  readonly deployment: string;
  /** The release the deployment was moved onto (this CLI's). */
  readonly version: string;
  readonly units: readonly UnitUpgrade[];
}

/** The upgrade stopped at a unit that did not come back; `report` says where every unit stands (with --json, printed beside the error). */
export class UpgradeError extends AgentError {
  override readonly name = 'UpgradeError';
  readonly report: UpgradeReport;
  constructor(message: string, report: UpgradeReport, options?: { cause?: unknown }) {
    super('AGENT_ERR_UPGRADE', message, options);
    this.report = report;
  }

  /** With --json the CLI prints the report beside the error: where every unit stands. */
  get jsonResult(): UpgradeReport {
    return this.report;
  }
}

const DEFAULT_UNIT_TIMEOUT_MS = 120_000;
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** What a live unit says about itself, or undefined when it does not answer. */
async function statusOf(u: DeployedUnit): Promise<AgentStatus | undefined> {
  try {
    return await (await clientFor(u, 5_000)).get<AgentStatus>('/status');
  } catch {
    return undefined;
  }
}

/** Units in the order they are upgraded: machine by machine (this host's first), by unit name within one. */
function upgradeOrder(d: Deployment): DeployedUnit[] {
  const machineKey = (u: DeployedUnit): number => (u.ssh === undefined ? -1 : Number(u.machine ?? 0));
  return Object.values(d.units).sort((a, b) => machineKey(a) - machineKey(b) || compareUnitNames(a.unit, b.unit));
}

interface Survey {
  readonly name: string;
  readonly d: Deployment;
  readonly version: string;
  readonly results: Map<string, UnitUpgrade>;
  /** The units to move, in order, with the version and agent module each runs now. */
  readonly todo: { u: DeployedUnit; from: string; previousRelease?: string }[];
  /** Units in error before the upgrade: their error does not stop it (only a new one does). */
  readonly inErrorBefore: Set<string>;
}

function reportOf(s: Survey): UpgradeReport {
  return { deployment: s.name, version: s.version, units: upgradeOrder(s.d).flatMap((u) => s.results.get(u.unit) ?? []) };
}

/** Which units `upgradeAgents` would move (outcome `pending`), and why the others stay. Changes nothing. */
export async function planUpgrade(home: string, options: Pick<UpgradeOptions, 'deployment'> = {}): Promise<UpgradeReport> {
  return reportOf(await survey(home, options));
}

/** 1. Where every unit stands. */
async function survey(home: string, options: Pick<UpgradeOptions, 'deployment'>): Promise<Survey> {
  const name = await resolveDeploymentName(home, options.deployment);
  const d = await readDeployment(home, name);
  const version = agentVersion();
  const results = new Map<string, UnitUpgrade>();
  const todo: Survey['todo'] = [];
  const inErrorBefore = new Set<string>();
  for (const u of upgradeOrder(d)) {
    if (u.state !== 'running' || !unitAlive(u)) {
      results.set(u.unit, { unit: u.unit, from: '', now: '', outcome: 'not-running', detail: `${u.state === 'running' ? 'down' : u.state}: takes this release when started` });
      continue;
    }
    const st = await statusOf(u);
    const from = st?.version ?? '';
    if (st?.engine.state === 'error') inErrorBefore.add(u.unit);
    const sameModule = u.ssh === undefined || u.release === (await releasePath(machineOf(d, u.machine!)));
    if (from === version && sameModule) {
      results.set(u.unit, { unit: u.unit, from, now: from, outcome: 'already' });
      continue;
    }
    todo.push({ u, from, ...(u.release !== undefined ? { previousRelease: u.release } : {}) });
    results.set(u.unit, { unit: u.unit, from, now: from, outcome: 'pending' });
  }
  return { name, d, version, results, todo, inErrorBefore };
}

/** Moves every running unit of the deployment onto this release, one at a time (see the file header). */
export async function upgradeAgents(home: string, options: UpgradeOptions = {}): Promise<UpgradeReport> {
  const plan = await survey(home, options);
  const { name, d, version, results, todo, inErrorBefore } = plan;
  const report = (): UpgradeReport => reportOf(plan);
  if (todo.length === 0) return report();
  const timeoutMs = options.timeoutMs ?? DEFAULT_UNIT_TIMEOUT_MS;
  const say = options.onProgress ?? (() => undefined);
  const startOpts = { deployment: name, ...(options.logLevel !== undefined ? { logLevel: options.logLevel } : {}), ...(options.noFsync ? { noFsync: true } : {}) };

  // 2. The release on every machine first: a machine that cannot take it stops the upgrade before any restart.
  // Meanwhile every charm is compiled and type-checked by this release (a unit's restart then finds it
  // cached): the copies wait on SSH, the type-checks on the CPU, so side by side they take the longer's time.
  const machines = [...new Set(todo.filter((t) => t.u.ssh !== undefined).map((t) => t.u.machine!))];
  if (machines.length > 0) say(`copying release ${version} to ${machines.length} machine(s)`);
  const charmsOf = (id: string): string[] => [...new Set(Object.values(d.units).filter((u) => u.machine === id).map((u) => u.charmDir))];
  const ready = await Promise.allSettled([
    ...machines.map((id) => prepareMachine(machineOf(d, id), name, charmsOf(id), deploymentKeyringFile(d))),
    ...[...new Set(todo.map((t) => t.u.charmDir))].map((dir) => prepareCharm(dir)),
  ]);
  const failed = ready.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;

  // 3. One unit at a time.
  const reload = (): Promise<Deployment> => readDeployment(home, name);
  for (const [i, t] of todo.entries()) {
    const { u } = t;
    const started = Date.now();
    say(`${u.unit}: ${t.from || 'unknown version'} -> ${version} (${i + 1}/${todo.length})`);
    try {
      await withUnitLock(home, name, u.unit, () => stopForRestart(d, u));
      const stopped = Date.now();
      await startUnit(home, u.unit, startOpts);
      const up = Date.now();
      await waitForConvergence(await reload(), { timeoutMs, reload, tolerate: inErrorBefore });
      const phases = `stopped in ${seconds(stopped - started)}, serving ${seconds(up - stopped)} later, converged ${seconds(Date.now() - up)} after that`;
      const now = (await statusOf((await reload()).units[u.unit]!))?.version ?? '';
      if (now !== version) throw new AgentError('AGENT_ERR_UPGRADE', `it reports version ${now || '(none)'} after the restart, not ${version}`);
      results.set(u.unit, { unit: u.unit, from: t.from, now, outcome: 'upgraded', tookMs: Date.now() - started });
      say(`${u.unit}: on ${version} (${phases})`);
    } catch (err) {
      // 4. Stop here; put this unit back on what it ran where that is still on its machine.
      const why = (err as Error).message;
      const fate = await rollBack(home, name, u, t.previousRelease, startOpts, timeoutMs, inErrorBefore);
      results.set(u.unit, { unit: u.unit, from: t.from, now: fate.now, outcome: 'failed', tookMs: Date.now() - started, detail: `${why}; ${fate.detail}` });
      const left = todo.slice(i + 1).map((x) => x.u.unit);
      const done = todo.slice(0, i).map((x) => x.u.unit);
      throw new UpgradeError(
        `upgrade to ${version} stopped at ${u.unit}, which did not come back on it: ${why}\n` +
          `  ${u.unit}: ${fate.detail}\n` +
          `  upgraded: ${done.join(', ') || '(none)'}; still on their old release: ${left.join(', ') || '(none)'} (releases interoperate: the deployment keeps working)\n` +
          `  see 'rhizome logs ${u.unit}' and ${u.dataDir}/agent.out; fix the cause, then run 'rhizome upgrade-model' again: it goes on from ${u.unit}`,
        report(),
        { cause: err },
      );
    }
  }
  return report();
}

/** After a failed restart: the unit started again on its previous agent module (SSH machines keep it in their cache), or left down. */
async function rollBack(
  home: string,
  name: string,
  u: DeployedUnit,
  previousRelease: string | undefined,
  startOpts: { deployment: string; logLevel?: string; noFsync?: boolean },
  timeoutMs: number,
  tolerate: ReadonlySet<string>,
): Promise<{ now: string; detail: string }> {
  const current = (await readDeployment(home, name)).units[u.unit];
  if (current === undefined) return { now: '', detail: 'it was removed meanwhile' };
  if (u.ssh === undefined || previousRelease === undefined) {
    // This host's old release was replaced by the installed one: nothing to go back to.
    const running = current.state === 'running' && unitAlive(current);
    return { now: running ? ((await statusOf(current))?.version ?? '') : '', detail: running ? 'it runs, but not as it should' : `it is down ('rhizome start ${u.unit}' once fixed)` };
  }
  try {
    await withUnitLock(home, name, u.unit, async () => stopForRestart(await readDeployment(home, name), current));
    await startUnit(home, u.unit, { ...startOpts, agentPath: previousRelease });
    const reload = (): Promise<Deployment> => readDeployment(home, name);
    await waitForConvergence(await reload(), { timeoutMs, reload, tolerate });
    const now = (await statusOf((await reload()).units[u.unit]!))?.version ?? '';
    return { now, detail: `restarted on its previous release ${now || previousRelease} and converged` };
  } catch (err) {
    return { now: '', detail: `could not be restarted on its previous release either (${(err as Error).message.split('\n')[0]}); it is down` };
  }
}
