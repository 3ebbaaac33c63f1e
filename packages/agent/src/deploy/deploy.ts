/**
 * `rhizome deploy BUNDLE` onto a fresh deployment: every unit of the bundle
 * started where the bundle places it (placement.ts: a detached agent
 * process on this machine, or under a supervisor on a machine reached over
 * SSH), then the relations, then (by default) a wait for convergence.
 *
 * Charms are compiled and type-checked before any agent starts
 * (charm/compile.ts, cached by content hash); a charm that does not compile
 * or type-check fails the deploy with the compiler's message. The first
 * unit started is the seed of the others; a (re)started unit is given every
 * live unit as seeds.
 *
 * The commands on single units are in unit-commands.ts, destroy in
 * destroy.ts, deploy onto a running deployment in extend.ts.
 */
import { AgentError } from '../errors';
import { ensureKeyringFile } from '../keys/keyring-file';
import { ensurePrivateDir } from '../internal/private-fs';
import { waitForConvergence, type ConvergenceCheck } from './converge';
import { clearStoppedDeployment } from './destroy';
import { allocateUnitNumber, compareUnitNames, deploymentDir, liveUnits, readDeployment, updateDeployment, writeDeployment, type Deployment } from './deployment';
import { deploymentKeyringFile } from './keyring-sync';
import { machineOf, newUnit, startAnywhere, unitProgress } from './placement';
import { relate } from './relate';
import { prepareMachine } from './remote';

export interface DeployOptions {
  readonly home: string;
  readonly timeoutMs?: number;
  readonly onProgress?: (check: ConvergenceCheck, elapsedMs: number) => void;
  /** Called when a phase starts (starting units, relating, converging). */
  readonly onPhase?: (message: string) => void;
  /** Log level of the agents. */
  readonly logLevel?: string;
  /** Skip fsync in the agents (tests only). */
  readonly noFsync?: boolean;
  /** Wait for convergence (default true). */
  readonly wait?: boolean;
  /** Where compiled charms are cached (default: charm/compile.ts's `charmCacheDir()`). */
  readonly charmCache?: string;
}

export interface DeployResult {
  readonly deployment: Deployment;
  readonly convergedInMs?: number;
}

/** Deploys a bundle: validates it, starts every unit, relates, and (by default) waits for convergence. */
export async function deploy(bundlePath: string, options: DeployOptions): Promise<DeployResult> {
  // Loaded on demand: bundle checking loads every charm (and zod, relations).
  const { readBundle } = await import('./bundle');
  const bundle = await readBundle(bundlePath);
  const { validateBundle } = await import('./validate');
  const modules = await validateBundle(bundle, options);
  const dir = deploymentDir(options.home, bundle.name);
  let existing: Deployment | undefined;
  try {
    existing = await readDeployment(options.home, bundle.name);
  } catch {
    existing = undefined;
  }
  if (existing && liveUnits(existing).length > 0) {
    throw new AgentError('AGENT_ERR_DEPLOY', `deployment "${bundle.name}" is already running (${liveUnits(existing).map((u) => u.unit).join(', ')}); run 'rhizome destroy ${bundle.name}' first`);
  }
  if (existing) {
    // Nothing of it runs (crashed, or killed): cleared before the fresh deploy.
    await clearStoppedDeployment(existing, dir, options.onPhase);
  }
  await ensurePrivateDir(dir);
  await ensureKeyringFile(deploymentKeyringFile({ home: options.home, name: bundle.name }));
  const d: Deployment = { name: bundle.name, bundleFile: bundle.file, home: options.home, createdAt: Date.now(), units: {}, relations: bundle.relations.map(([a, b]) => [a, b] as const) };
  if (Object.keys(bundle.machines).length > 0) {
    d.machines = Object.fromEntries(Object.values(bundle.machines).map((m) => [m.id, 'ssh' in m ? { id: m.id, ssh: m.ssh, dir: m.dir } : { id: m.id }]));
  }
  for (const s of Object.values(bundle.services)) {
    for (let i = 0; i < s.units; i++) {
      const u = newUnit(d, s.name, allocateUnitNumber(d, s.name), s.charmDir, s.options, s.to?.[i], s.dashboard);
      u.charmModule = modules[s.name];
      d.units[u.unit] = u;
    }
  }
  await writeDeployment(d);
  const units = Object.values(d.units).sort((a, b) => compareUnitNames(a.unit, b.unit));
  const placedRemotely = units.filter((u) => u.ssh !== undefined);
  if (placedRemotely.length > 0) {
    // Every machine at once: release, charms and keyring copied before the first agent starts.
    options.onPhase?.(`copying the release to ${new Set(placedRemotely.map((u) => u.machine)).size} machine(s)`);
    const byMachine = new Map<string, Set<string>>();
    for (const u of placedRemotely) byMachine.set(u.machine!, (byMachine.get(u.machine!) ?? new Set()).add(u.charmDir));
    await Promise.all([...byMachine].map(([id, charms]) => prepareMachine(machineOf(d, id), d.name, [...charms], deploymentKeyringFile(d))));
  }
  options.onPhase?.(`starting ${units.length} unit(s) of deployment ${d.name}`);
  const spawnOpts = {
    ...(options.logLevel ? { logLevel: options.logLevel } : {}),
    ...(options.noFsync ? { noFsync: true } : {}),
    ...(options.charmCache !== undefined ? { charmCache: options.charmCache } : {}),
  };
  try {
    const [first, ...rest] = units;
    if (first) {
      await startAnywhere(d, first, [], spawnOpts);
      await Promise.all(rest.map((u) => startAnywhere(d, u, [first.gossipAddress], spawnOpts)));
    }
  } finally {
    await updateDeployment(d.home, d.name, (fresh) => {
      for (const u of units) {
        const r = fresh.units[u.unit];
        if (r) Object.assign(r, unitProgress(u));
      }
    });
  }
  if (d.relations.length > 0) {
    options.onPhase?.(`relating ${d.relations.map(([a, b]) => `${a} ${b}`).join(', ')}`);
    for (const [a, b] of d.relations) await relate(d, a, b, 30_000);
  }
  if (options.wait === false) return { deployment: d };
  options.onPhase?.('waiting for convergence');
  const ms = await waitForConvergence(d, {
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  return { deployment: d, convergedInMs: ms };
}
