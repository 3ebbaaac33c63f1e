/**
 * Where a unit is placed and how it starts there: on this machine as a
 * detached agent process (unit-process.ts), or on one of the deployment's
 * machines over SSH under a supervisor (remote.ts). Also the seeds a
 * (re)started unit is given, and how what a start learned is recorded.
 */
import { join } from 'node:path';
import { AgentError } from '../errors';
import { ensureKeyringFile } from '../keys/keyring-file';
import {
  deploymentDir,
  deploymentLabel,
  liveUnits,
  unitDirName,
  updateDeployment,
  type DeployedUnit,
  type Deployment,
  type MachineRecord,
} from './deployment';
import { deploymentKeyringFile, syncDeploymentKeyring } from './keyring-sync';
import { remoteDataDir, startRemoteUnit } from './remote';
import { spawnUnit } from './unit-process';

/** A new unit's record, placed on `machine` (else on this machine); not started. */
export function newUnit(d: Deployment, service: string, index: number, charmDir: string, options: DeployedUnit['options'], machine?: string, dashboard?: string | number): DeployedUnit {
  const unit = `${service}/${index}`;
  const m = machine !== undefined ? machineOf(d, machine) : undefined;
  const placed = m ? { machine: m.id, ...(m.ssh !== undefined ? { ssh: m.ssh } : {}) } : {};
  const dataDir = m?.ssh !== undefined ? remoteDataDir(m, d.name, unitDirName(unit)) : join(deploymentDir(d.home, d.name), unitDirName(unit));
  return { unit, service, charmDir, dataDir, options, pid: 0, controlUrl: '', gossipAddress: '', state: 'stopped', ...placed, ...(dashboard !== undefined ? { dashboard } : {}) };
}

/**
 * Where a unit added without `--to` goes: the machine, among those the
 * service already has units on, holding the fewest of them (the first such
 * machine in the record on a tie), so `scale datanode 6` over three machines
 * puts two on each instead of four beside the first unit. This machine (units
 * with no machine id) counts as one place among them. Called inside the
 * record's update, so add-units running at once see each other's choices.
 * Machines the service has no unit on are never chosen: putting a datanode
 * beside the namenode is the operator's call (`--to`).
 */
export function leastLoadedMachine(d: Deployment, service: string): string | undefined {
  const counts = new Map<string | undefined, number>();
  for (const u of Object.values(d.units)) if (u.service === service) counts.set(u.machine, (counts.get(u.machine) ?? 0) + 1);
  let best: string | undefined;
  let fewest = Infinity;
  for (const [machine, n] of counts) {
    if (n < fewest) [best, fewest] = [machine, n];
  }
  return best;
}

/** The machine `id` of the deployment, or AGENT_ERR_UNKNOWN_MACHINE listing those there are. */
export function machineOf(d: Deployment, id: string): MachineRecord {
  const m = d.machines?.[id];
  if (!m) {
    throw new AgentError('AGENT_ERR_UNKNOWN_MACHINE', `deployment "${d.name}" has no machine ${id}; its machines are ${Object.keys(d.machines ?? {}).join(', ') || '(none: rhizome add-machine ssh:user@host adds one)'}`);
  }
  return m;
}

/** Starts a unit where it is placed: on this machine, or on its machine over SSH under a supervisor. */
export async function startAnywhere(d: Deployment, u: DeployedUnit, seeds: readonly string[], opts: { logLevel?: string; noFsync?: boolean; agentPath?: string }): Promise<DeployedUnit> {
  if (u.ssh === undefined) return spawnUnit(d, u, seeds, opts);
  const keyringFile = deploymentKeyringFile(d);
  await ensureKeyringFile(keyringFile);
  // The live cluster's keys, not the ones made at deploy: `rhizome keys` may have rotated them since.
  await syncDeploymentKeyring(d, keyringFile);
  return startRemoteUnit(d, u, machineOf(d, u.machine!), seeds, { keyringFile, label: deploymentLabel(d), ...opts });
}

/**
 * Starts `u` where it is placed, seeded by the deployment's other units,
 * and records what the start learned in `home`'s record of deployment
 * `name`, also when it failed.
 */
export async function startAndRecord(home: string, name: string, d: Deployment, u: DeployedUnit, opts: { logLevel?: string; noFsync?: boolean; agentPath?: string }): Promise<DeployedUnit> {
  try {
    await startAnywhere(d, u, seedsOf(d, u.unit), opts);
  } finally {
    await recordUnit(home, name, u);
  }
  return u;
}

/**
 * The seeds a (re)started unit is given: the running units, then every other
 * unit's last address. A unit that is down now keeps its address when it
 * comes back (see mesh/rejoin.ts), and the agent keeps trying its seeds while
 * it knows no live member, so two units started while the other was down
 * still meet.
 */
export function seedsOf(d: Deployment, except: string): string[] {
  const live = liveUnits(d).filter((u) => u.unit !== except && u.gossipAddress !== '');
  const rest = Object.values(d.units).filter((u) => u.unit !== except && u.gossipAddress !== '' && !live.includes(u));
  return [...new Set([...live, ...rest].map((u) => u.gossipAddress))];
}

/** The fields a start, kill or stop changes. */
export function unitProgress(u: DeployedUnit): Partial<DeployedUnit> {
  return { pid: u.pid, pidStartTicks: u.pidStartTicks, controlUrl: u.controlUrl, gossipAddress: u.gossipAddress, state: u.state, supervisor: u.supervisor, supervisorPid: u.supervisorPid, charmModule: u.charmModule, release: u.release };
}

/** Copies what a start, kill or stop learned about `u` into the record (under its lock); a unit removed meanwhile stays removed. */
export async function recordUnit(home: string, name: string, u: DeployedUnit): Promise<void> {
  await updateDeployment(home, name, (d) => {
    const r = d.units[u.unit];
    if (r) Object.assign(r, unitProgress(u));
  });
}
