/**
 * Ending a whole deployment: `destroy`, and the clearing of a stopped one
 * that a fresh deploy of the same bundle replaces. The agents are stopped
 * first, then the workload daemons any unit left behind (a killed agent's
 * too), so no workload outlives its deployment.
 */
import { rm } from 'node:fs/promises';
import { AgentError } from '../errors';
import { deploymentDir, isAlive, readDeployment, writeDeployment, type DeployedUnit, type Deployment } from './deployment';
import { cleanMachine, stopRemoteUnit } from './remote';
import { signalGroup, waitExit } from './unit-process';
import { stopUnitWorkloads, type StopWorkloadsOptions, type WorkloadReport, type WorkloadsStopped } from './workloads';

export interface DestroyOptions {
  readonly deployment?: string;
  readonly keep?: boolean;
  /** How long agents have to exit after SIGTERM (default 20 s). */
  readonly timeoutMs?: number;
  /** Bounds on stopping the workloads agents left behind. */
  readonly workloads?: StopWorkloadsOptions;
}

/**
 * SIGTERMs every unit (graceful: each leaves the mesh), waits, SIGKILLs
 * stragglers, stops the workload daemons any unit left behind (a killed
 * agent's too), and removes the deployment's directory unless `keep`.
 */
export async function destroy(home: string, opts: DestroyOptions = {}): Promise<Deployment & WorkloadsStopped> {
  const d = await readDeployment(home, opts.deployment);
  // Remote units: stop each supervisor (and agent) on its machine, then clean the machine. A machine
  // that does not answer does not stop the rest: everything reachable is stopped, and the record kept.
  const remoteUnits = Object.values(d.units).filter((u) => u.ssh !== undefined);
  const stops = await Promise.allSettled(remoteUnits.map((u) => stopRemoteUnit(d, u, { removeData: !opts.keep })));
  const failed = new Map<string, { units: string[]; why: string }>();
  stops.forEach((r, i) => {
    if (r.status === 'fulfilled') return;
    const u = remoteUnits[i]!;
    const label = u.machine !== undefined ? `machine ${u.machine} (${u.ssh})` : u.ssh!;
    const entry = failed.get(label) ?? { units: [], why: (r.reason as Error).message };
    entry.units.push(u.unit);
    failed.set(label, entry);
  });
  const remoteWorkloads = stops.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
  if (!opts.keep && failed.size === 0) {
    // Every machine of the deployment, including those whose last unit was removed earlier.
    await Promise.all(Object.values(d.machines ?? {}).filter((m) => m.ssh !== undefined).map((m) => cleanMachine(m, d.name)));
  }
  const running = Object.values(d.units).filter((u) => u.ssh === undefined && isAlive(u.pid));
  for (const u of running) signalGroup(u.pid, 'SIGTERM');
  const timeoutMs = opts.timeoutMs ?? 20_000;
  await Promise.all(
    running.map(async (u) => {
      if (!(await waitExit(u.pid, timeoutMs))) {
        signalGroup(u.pid, 'SIGKILL');
        await waitExit(u.pid, 5_000);
      }
      u.state = 'stopped';
    }),
  );
  const workloads = [...remoteWorkloads, ...(await stopWorkloadsOf(Object.values(d.units), { ...opts.workloads, removeData: !opts.keep }))];
  if (failed.size > 0) {
    await writeDeployment(d);
    const where = [...failed].map(([label, f]) => `${label} did not answer (${f.units.join(', ')} may still run there): ${f.why}`).join('\n');
    throw new AgentError('AGENT_ERR_SSH', `destroy of "${d.name}" is not finished; every unit this host could reach is stopped, but\n${where}\nThe deployment is kept: run 'rhizome destroy ${d.name}' again once the machine answers.`);
  }
  if (opts.keep) await writeDeployment(d);
  else await rm(deploymentDir(d.home, d.name), { recursive: true, force: true });
  return { ...d, workloads };
}

/**
 * Clears a deployment of which nothing runs (crashed, or killed) from `dir`,
 * so that a fresh deploy does not resurrect its old state, nor find its
 * ports taken by the daemons its killed units left behind: the workloads
 * left, its remote units (supervisors and workloads stopped, its directory
 * removed on every machine), then its directory here.
 */
export async function clearStoppedDeployment(existing: Deployment, dir: string, onPhase?: (message: string) => void): Promise<void> {
  // Its workloads' data goes too: a unit deployed afresh must not find its predecessor's database.
  const left = await stopWorkloadsOf(Object.values(existing.units), { removeData: true });
  for (const r of left) if (r.outcome !== 'not-running') onPhase?.(`${r.unit}: ${r.detail}`);
  const remoteLeft = Object.values(existing.units).filter((u) => u.ssh !== undefined);
  for (const r of (await Promise.all(remoteLeft.map((u) => stopRemoteUnit(existing, u, { removeData: true })))).flat()) if (r.outcome !== 'not-running') onPhase?.(`${r.unit}: ${r.detail}`);
  await Promise.all(Object.values(existing.machines ?? {}).filter((m) => m.ssh !== undefined).map((m) => cleanMachine(m, existing.name)));
  onPhase?.(`removing the stopped deployment ${existing.name} left in ${dir}`);
  await rm(dir, { recursive: true, force: true });
}

/** The workloads of units whose agents are gone, stopped (units with a live agent are skipped: it owns them). */
async function stopWorkloadsOf(units: readonly DeployedUnit[], opts?: StopWorkloadsOptions): Promise<WorkloadReport[]> {
  const gone = units.filter((u) => u.ssh === undefined && !isAlive(u.pid));
  return (await Promise.all(gone.map((u) => stopUnitWorkloads(u, opts)))).flat();
}
