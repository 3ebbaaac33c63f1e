/**
 * `rhizome status`, the fetching half: asks each unit's agent for its status
 * (through the deployment record), or asks the one agent addressed with
 * `--agent`/`--data-dir` (or the local agent) for every unit of its mesh
 * (`GET /cluster/status`), and returns a `ClusterStatus` for the renderers.
 * Units that do not answer are reported, not dropped.
 */
import type { AgentStatus } from '../../unit/api';
import { clientFor, unitAlive, type DeployedUnit } from '../../deploy/deployment';
import { resolveTarget, type GlobalOptions } from '../target';
import type { ClusterStatus, UnitReport } from './model';

/** Where a placed unit runs and what supervises it, e.g. `1 root@10.0.0.5 (rhizome-supervisor)`; absent for unplaced local units. */
function machineOf(u: DeployedUnit): string | undefined {
  if (u.machine === undefined) return undefined;
  return `${u.machine} ${u.ssh ?? 'local'}${u.supervisor ? ` (${u.supervisor})` : ''}`;
}

export async function fetchClusterStatus(g: GlobalOptions, timeoutMs = 5_000): Promise<ClusterStatus> {
  const t = await resolveTarget(g);
  if (t.kind === 'single') {
    // One agent answers for its whole mesh (every host), over the encrypted mesh.
    const view = await t.client.get<{ label?: string; units: { unit: string; service: string; up: boolean; status?: AgentStatus; error?: string }[] }>('/cluster/status', { timeoutMs: String(timeoutMs) });
    return {
      ...(view.label !== undefined ? { deployment: view.label.replace(/^rhizome-/, '') } : {}),
      units: view.units.map((u) => ({ unit: u.unit, service: u.service, up: u.up, ...(u.status !== undefined ? { status: u.status } : {}), ...(u.error !== undefined ? { error: u.error } : {}) })),
    };
  }
  const d = t.deployment;
  const units = await Promise.all(
    Object.values(d.units).map(async (u): Promise<UnitReport> => {
      const machine = machineOf(u);
      const base = { unit: u.unit, service: u.service, ...(machine ? { machine } : {}) };
      if (u.state === 'running' && u.unreachable === true) return { ...base, up: false, error: `unreachable: machine ${u.machine ?? '?'} does not answer over SSH` };
      if (u.state !== 'running' || !unitAlive(u)) return { ...base, up: false, error: u.state === 'running' ? 'down' : u.state };
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
