/**
 * The commands on one unit of a running deployment: add-unit, start, kill,
 * stop and remove-unit. Each runs under the unit's lock (unit numbers are
 * taken under the record lock), and copies what it learned into the record.
 *
 * Once a unit's agent is gone (stopped, removed, or killed earlier), `stop`
 * and `remove-unit` end whichever of its workload daemons still run, so no
 * workload outlives its unit. `kill` leaves them: it is a crash, and the
 * restarted unit takes its daemons over.
 */
import { rm } from 'node:fs/promises';
import { AgentError } from '../errors';
import {
  allocateUnitNumber,
  clientFor,
  isAlive,
  liveUnits,
  readDeployment,
  resolveDeploymentName,
  unitAlive,
  unitOf,
  updateDeployment,
  withUnitLock,
  type DeployedUnit,
  type Deployment,
} from './deployment';
import { leastLoadedMachine, machineOf, newUnit, recordUnit, startAndRecord } from './placement';
import { killRemoteUnit, removeRemoteDir, stopRemoteUnit } from './remote';
import { exited } from './restart-stop';
import { signalGroup, waitExit } from './unit-process';
import { prepareCharm } from './validate';
import { stopUnitWorkloads, type StopWorkloadsOptions, type WorkloadReport, type WorkloadsStopped } from './workloads';

/**
 * Starts one more unit of a service in a deployment. Its number is taken
 * under the record lock (two concurrent add-units get two numbers), then the
 * agent starts under the unit's lock without holding up other commands.
 */
export async function addUnit(home: string, service: string, opts: { deployment?: string; logLevel?: string; noFsync?: boolean; to?: string } = {}): Promise<DeployedUnit> {
  const name = await resolveDeploymentName(home, opts.deployment);
  // Compiled (and type-checked) before a unit is recorded: a broken charm adds nothing.
  const known = Object.values((await readDeployment(home, name)).units).find((x) => x.service === service);
  const charmModule = known ? await prepareCharm(known.charmDir) : undefined;
  if (!known) {
    const services = [...new Set(Object.values((await readDeployment(home, name)).units).map((x) => x.service))].sort();
    throw new AgentError('AGENT_ERR_UNKNOWN_UNIT', `deployment "${name}" has no service "${service}"; its services are ${services.join(', ')}`);
  }
  // Placed with --to, else spread over the service's machines (leastLoadedMachine).
  const machine = opts.to ?? SPREAD;
  const dashboard = known.dashboard !== undefined ? { dashboard: known.dashboard } : {};
  return startNewUnit(home, name, { service, charmDir: known.charmDir, options: known.options, machine, ...(charmModule ? { charmModule } : {}), ...dashboard }, opts);
}

/** NewUnitSpec.machine: placed by leastLoadedMachine, decided under the record's lock. */
export const SPREAD: unique symbol = Symbol('spread');

/** What a new unit is made of (add-unit takes it from the service's first unit, deploy onto a running deployment from the bundle). */
export interface NewUnitSpec {
  readonly service: string;
  readonly charmDir: string;
  readonly options: DeployedUnit['options'];
  /** Machine id, or SPREAD: the service's least loaded machine when the unit is recorded. */
  readonly machine?: string | typeof SPREAD;
  /** The charm already compiled for `charmDir`. */
  readonly charmModule?: string;
  readonly dashboard?: string | number;
}

/** Records a new unit of `spec.service` under the next free number and starts it where it is placed. */
export async function startNewUnit(home: string, name: string, spec: NewUnitSpec, opts: { logLevel?: string; noFsync?: boolean } = {}): Promise<DeployedUnit> {
  const u = await updateDeployment(home, name, (d) => {
    const machine = spec.machine === SPREAD ? leastLoadedMachine(d, spec.service) : spec.machine;
    if (machine !== undefined) machineOf(d, machine);
    const created = newUnit(d, spec.service, allocateUnitNumber(d, spec.service), spec.charmDir, spec.options, machine, spec.dashboard);
    if (spec.charmModule !== undefined) created.charmModule = spec.charmModule;
    d.units[created.unit] = created;
    return created;
  });
  return withUnitLock(home, name, u.unit, async () => {
    return startAndRecord(home, name, await readDeployment(home, name), u, opts);
  });
}

/** Restarts a stopped or killed unit from its data directory. */
export async function startUnit(home: string, unit: string, opts: { deployment?: string; logLevel?: string; noFsync?: boolean; agentPath?: string } = {}): Promise<DeployedUnit> {
  const name = await resolveDeploymentName(home, opts.deployment);
  return withUnitLock(home, name, unit, async () => {
    const d = await readDeployment(home, name);
    const u = unitOf(d, unit);
    // A local agent just stopped for a restart may be a zombie its parent (init) has not reaped yet: it has exited.
    if (u.state === 'running' && unitAlive(u) && !(u.ssh === undefined && exited(u.pid))) throw new AgentError('AGENT_ERR_DEPLOY', `unit ${unit} is already running (pid ${u.pid})`);
    // The charm as it is now (cached when unchanged), type-checked before the agent starts.
    u.charmModule = await prepareCharm(u.charmDir);
    return startAndRecord(home, name, d, u, opts);
  });
}

/** SIGKILLs a unit's process (for demos and tests: a crash). */
export async function killUnit(home: string, unit: string, opts: { deployment?: string } = {}): Promise<DeployedUnit> {
  const name = await resolveDeploymentName(home, opts.deployment);
  return withUnitLock(home, name, unit, async () => {
    const u = unitOf(await readDeployment(home, name), unit);
    if (!unitAlive(u)) throw new AgentError('AGENT_ERR_NOT_RUNNING', `unit ${unit} is not running`);
    if (u.ssh !== undefined) {
      // Its supervisor starts it again: the record keeps saying running.
      await killRemoteUnit(u);
      return u;
    }
    signalGroup(u.pid, 'SIGKILL');
    await waitExit(u.pid, 10_000);
    u.state = 'killed';
    await recordUnit(home, name, u);
    return u;
  });
}

/** Stops one unit gracefully (SIGTERM), then any workload daemon it left running. */
export async function stopUnit(home: string, unit: string, opts: { deployment?: string; workloads?: StopWorkloadsOptions } = {}): Promise<DeployedUnit & WorkloadsStopped> {
  const name = await resolveDeploymentName(home, opts.deployment);
  return withUnitLock(home, name, unit, async () => {
    const current = await readDeployment(home, name);
    const u = unitOf(current, unit);
    const workloads = await stopAgentAndWorkloads(u, opts.workloads, current);
    u.state = 'stopped';
    await recordUnit(home, name, u);
    return { ...u, workloads };
  });
}

/**
 * Removes a unit for good (Juju's remove-unit): its agent is stopped
 * gracefully (it leaves the mesh, so related units run departed, and broken
 * where it was their last unit), its workloads stop, its record and data
 * directory go, and every live unit is told it is gone for good so that
 * peers garbage-collect its links and departed entries. Its number is never
 * handed out again.
 */
export async function removeUnit(home: string, unit: string, opts: { deployment?: string; workloads?: StopWorkloadsOptions } = {}): Promise<DeployedUnit & WorkloadsStopped> {
  const name = await resolveDeploymentName(home, opts.deployment);
  return withUnitLock(home, name, unit, async () => {
    const current = await readDeployment(home, name);
    const u = unitOf(current, unit);
    const workloads = await stopAgentAndWorkloads(u, { ...opts.workloads, removeData: true }, current);
    if (u.ssh !== undefined) await removeRemoteDir(u);
    else {
      if (isAlive(u.pid)) throw new AgentError('AGENT_ERR_DEPLOY', `the agent of ${unit} (pid ${u.pid}) did not exit; nothing was removed, try again`);
      await rm(u.dataDir, { recursive: true, force: true });
    }
    const d = await updateDeployment(home, name, (fresh) => {
      delete fresh.units[unit];
      return fresh;
    });
    await announceGone(d, unit);
    u.state = 'stopped';
    return { ...u, workloads };
  });
}

/** Tells the mesh (through any live unit) that `unit` is gone for good; a deployment with no live unit has nobody to tell. */
async function announceGone(d: Deployment, unit: string): Promise<void> {
  for (const live of liveUnits(d)) {
    try {
      await (await clientFor(live, 10_000)).json('POST', '/gone', { unit });
      return;
    } catch {
      // try the next live unit
    }
  }
}

/** SIGTERMs a unit's agent (it leaves the mesh), SIGKILLs it after 20 s, then stops the workloads it left. */
async function stopAgentAndWorkloads(u: DeployedUnit, opts?: StopWorkloadsOptions, d?: Pick<Deployment, 'name'>): Promise<WorkloadReport[]> {
  if (u.ssh !== undefined) {
    // The supervisor is stopped first, or it would start the agent again; then the workloads, on the machine.
    return stopRemoteUnit(d ?? { name: '' }, u, { removeData: opts?.removeData === true });
  }
  if (isAlive(u.pid)) {
    signalGroup(u.pid, 'SIGTERM');
    if (!(await waitExit(u.pid, 20_000))) {
      signalGroup(u.pid, 'SIGKILL');
      await waitExit(u.pid, 5_000);
    }
  }
  return isAlive(u.pid) ? [] : stopUnitWorkloads(u, opts);
}
