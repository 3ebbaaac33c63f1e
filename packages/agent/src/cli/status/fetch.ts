/**
 * `rhizome status`, the fetching half: asks each unit's agent for its status
 * (through the deployment record), or the one agent addressed with
 * `--agent`/`--data-dir`, and returns a `ClusterStatus` for the renderers.
 * Units that do not answer are reported, not dropped.
 */
import type { AgentStatus } from '../../agent';
import { clientFor, isAlive, type DeployedUnit } from '../../deploy/deployment';
import { resolveTarget, type GlobalOptions } from '../target';
import type { ClusterStatus, UnitReport } from './model';

/** A placement the deployment may record (`ssh:user@host`); absent for local units. */
function machineOf(u: DeployedUnit): string | undefined {
  const m = (u as DeployedUnit & { machine?: unknown }).machine;
  return typeof m === 'string' && m !== '' ? m : undefined;
}

export async function fetchClusterStatus(g: GlobalOptions, timeoutMs = 5_000): Promise<ClusterStatus> {
  const t = await resolveTarget(g);
  if (t.kind === 'single') {
    const s = await t.client.get<AgentStatus>('/status');
    return { units: [{ unit: s.unit, service: s.service, up: true, status: s }] };
  }
  const d = t.deployment;
  const units = await Promise.all(
    Object.values(d.units).map(async (u): Promise<UnitReport> => {
      const machine = machineOf(u);
      const base = { unit: u.unit, service: u.service, ...(machine ? { machine } : {}) };
      if (u.state !== 'running' || !isAlive(u.pid)) return { ...base, up: false, error: u.state === 'running' ? 'down' : u.state };
      try {
        const client = await clientFor(u, timeoutMs);
        return { ...base, up: true, status: await client.get<AgentStatus>('/status') };
      } catch (err) {
        return { ...base, up: false, error: `unreachable: ${(err as Error).message}` };
      }
    }),
  );
  return { deployment: d.name, units };
}
