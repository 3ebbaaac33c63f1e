/**
 * A deployment's machines (Juju's manual provider): `add-machine
 * ssh:user@host[:port]` checks the machine over SSH (reachable, Node.js >=
 * 20) and records it under the next free id; `machines` lists them with
 * their units; `remove-machine N` forgets one that no unit uses any more
 * (after cleaning the deployment's directory there). Ids are never reused,
 * like unit numbers.
 */
import { AgentError } from '../errors';
import { DEFAULT_MACHINE_DIR } from './bundle';
import { resolveDeploymentName, updateDeployment, type MachineRecord } from './deployment';
import { checkMachine, cleanMachine, type MachineCheck } from './remote';
import { parseSshTarget } from './ssh';

export interface MachineListing extends MachineRecord {
  readonly units: readonly string[];
}

/** Parses `ssh:user@host[:port]` (the `ssh:` prefix optional) or `local`. */
export function parseMachineSpec(spec: string): { ssh?: string } {
  if (spec === 'local') return {};
  const target = spec.replace(/^ssh:/, '');
  parseSshTarget(target);
  return { ssh: target };
}

/** Checks the machine, then records it with the next id; returns the record and what the check found. */
export async function addMachine(home: string, spec: string, opts: { deployment?: string; dir?: string } = {}): Promise<MachineRecord & { check?: MachineCheck }> {
  const name = await resolveDeploymentName(home, opts.deployment);
  const { ssh } = parseMachineSpec(spec);
  if (opts.dir !== undefined && !opts.dir.startsWith('/')) throw new AgentError('AGENT_ERR_BAD_OPTIONS', `--dir must be an absolute path on the machine, got "${opts.dir}"`);
  const probe: MachineRecord = ssh !== undefined ? { id: '?', ssh, dir: opts.dir ?? DEFAULT_MACHINE_DIR } : { id: '?' };
  const check = ssh !== undefined ? await checkMachine(probe) : undefined;
  const record = await updateDeployment(home, name, (d) => {
    const machines = (d.machines ??= {});
    // The same host and port with the same dir is the same machine, however the user is spelled
    // (ssh:10.0.0.5 and root@10.0.0.5): its units would share one directory.
    const where = (ssh: string | undefined) => {
      if (ssh === undefined) return 'local';
      const t = parseSshTarget(ssh);
      return `${t.host}:${t.port ?? 22}`;
    };
    const taken = Object.values(machines).find((m) => where(m.ssh) === where(probe.ssh) && m.dir === probe.dir);
    if (taken) throw new AgentError('AGENT_ERR_BAD_OPTIONS', `that machine is already machine ${taken.id} of deployment "${d.name}" (${taken.ssh ?? 'local'}, ${taken.dir ?? 'this machine'})`);
    const id = String(Math.max(-1, d.nextMachine ?? -1, ...Object.keys(machines).map(Number)) + 1);
    d.nextMachine = Number(id);
    const m: MachineRecord = { ...probe, id };
    machines[id] = m;
    return m;
  });
  return { ...record, ...(check ? { check } : {}) };
}

/** Every machine of the deployment with the units placed on it. */
export function listMachines(d: { machines?: Record<string, MachineRecord>; units: Record<string, { unit: string; machine?: string | undefined }> }): MachineListing[] {
  return Object.values(d.machines ?? {})
    .sort((a, b) => Number(a.id) - Number(b.id))
    .map((m) => ({ ...m, units: Object.values(d.units).filter((u) => u.machine === m.id).map((u) => u.unit).sort() }));
}

/** Forgets a machine no unit uses; its directory for this deployment is removed first. */
export async function removeMachine(home: string, id: string, opts: { deployment?: string } = {}): Promise<MachineRecord> {
  const name = await resolveDeploymentName(home, opts.deployment);
  const m = await updateDeployment(home, name, (d) => {
    const found = d.machines?.[id];
    if (!found) throw new AgentError('AGENT_ERR_UNKNOWN_MACHINE', `deployment "${d.name}" has no machine ${id}; its machines are ${Object.keys(d.machines ?? {}).join(', ') || '(none)'}`);
    const units = Object.values(d.units).filter((u) => u.machine === id).map((u) => u.unit);
    if (units.length > 0) throw new AgentError('AGENT_ERR_DEPLOY', `machine ${id} still runs ${units.join(', ')}; remove those units first (rhizome remove-unit UNIT)`);
    return found;
  });
  if (m.ssh !== undefined) await cleanMachine(m, name);
  await updateDeployment(home, name, (d) => {
    if (d.machines) delete d.machines[id];
  });
  return m;
}
