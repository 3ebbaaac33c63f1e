/**
 * `rhizome deploy BUNDLE` when the bundle's deployment is already running:
 * like `juju deploy` of a bundle onto a model, it adds what the bundle has
 * and the deployment lacks (machines, services with their units,
 * relations), checked first as a fresh deploy is, and leaves running
 * services alone. A service the bundle changes (its charm folder, options
 * or unit count) is named with the command that changes it (upgrade-charm,
 * config, scale): a deploy never restarts or removes a running unit. A
 * machine id the bundle gives another address than the deployment's is
 * refused before anything changes. Nothing new: nothing happens.
 */
import { AgentError } from '../errors';
import type { Bundle, BundleService } from './bundle';
import { waitForConvergence } from './converge';
import { deploy, type DeployOptions } from './deploy';
import { liveUnits, readDeployment, updateDeployment, type Deployment, type DeployedUnit, type MachineRecord } from './deployment';
import { relate } from './relate';
import { startNewUnit } from './unit-commands';
import { validateBundle } from './validate';

export interface ExtendResult {
  readonly deployment: Deployment;
  /** Units started for services new to the deployment. */
  readonly added: readonly string[];
  readonly related: readonly (readonly [string, string])[];
  /** Differences left alone, each with the command that applies it. */
  readonly notes: readonly string[];
  readonly convergedInMs?: number;
}

const relationKey = ([a, b]: readonly [string, string]): string => [a, b].sort().join(' ');

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** What a running service differs in from the bundle's, as notes naming the command that changes it. */
function differences(s: BundleService, units: readonly DeployedUnit[]): string[] {
  const notes: string[] = [];
  const first = units[0]!;
  if (first.charmDir !== s.charmDir) notes.push(`${s.name}: runs the charm in ${first.charmDir}, the bundle names ${s.charmDir}; left as it is ('rhizome upgrade-charm ${s.name} --path ${s.charmDir}' changes it)`);
  const changed = Object.keys({ ...first.options, ...s.options }).filter((k) => !sameJson(first.options[k], s.options[k]));
  if (changed.length > 0) notes.push(`${s.name}: options ${changed.join(', ')} differ from the bundle's; left as they are ('rhizome config ${s.name} KEY=VALUE' changes them)`);
  if (units.length !== s.units) notes.push(`${s.name}: has ${units.length} unit(s), the bundle says ${s.units}; left as it is ('rhizome scale ${s.name} ${s.units}' changes it)`);
  return notes;
}

export async function extendDeployment(existing: Deployment, bundle: Bundle, options: DeployOptions): Promise<ExtendResult> {
  const byService = new Map<string, DeployedUnit[]>();
  for (const u of Object.values(existing.units)) byService.set(u.service, [...(byService.get(u.service) ?? []), u]);
  const fresh = Object.values(bundle.services).filter((s) => !byService.has(s.name));
  const notes = Object.values(bundle.services)
    .filter((s) => byService.has(s.name))
    .flatMap((s) => differences(s, byService.get(s.name)!));
  const known = new Set(existing.relations.map(relationKey));
  const newRelations = bundle.relations.filter((r) => !known.has(relationKey(r)));

  // Machines: the bundle's ids must mean the deployment's machines; new ids are added.
  const conflicts: string[] = [];
  const newMachines: MachineRecord[] = [];
  for (const m of Object.values(bundle.machines)) {
    const record: MachineRecord = 'ssh' in m ? { id: m.id, ssh: m.ssh, dir: m.dir } : { id: m.id };
    const had = existing.machines?.[m.id];
    if (had === undefined) newMachines.push(record);
    else if (had.ssh !== record.ssh || (record.ssh !== undefined && had.dir !== record.dir)) {
      conflicts.push(`machines.${m.id}: is ${had.ssh ?? 'local'}${had.dir ? ` (${had.dir})` : ''} in deployment "${existing.name}", the bundle says ${record.ssh ?? 'local'}${record.dir ? ` (${record.dir})` : ''}`);
    }
  }
  if (conflicts.length > 0) {
    throw new AgentError('AGENT_ERR_BAD_BUNDLE', `${bundle.file} does not fit the running deployment "${existing.name}" (nothing was changed): ${conflicts.join('; ')}; give new machines new ids`);
  }
  if (fresh.length === 0 && newRelations.length === 0) return { deployment: existing, added: [], related: [], notes };

  // The new services, and the services the new relations touch, checked as a fresh deploy checks them.
  const touched = new Set([...fresh.map((s) => s.name), ...newRelations.flatMap(([a, b]) => [a.split(':')[0]!, b.split(':')[0]!])]);
  const subset: Bundle = { ...bundle, services: Object.fromEntries(Object.entries(bundle.services).filter(([n]) => touched.has(n))), relations: newRelations };
  // Only new services' machines are checked over SSH: the running ones were checked when they were deployed.
  const unplaced = (s: BundleService): BundleService => ({ name: s.name, charmDir: s.charmDir, units: s.units, options: s.options, ...(s.dashboard !== undefined ? { dashboard: s.dashboard } : {}) });
  const checkOnly: Bundle = { ...subset, services: Object.fromEntries(Object.entries(subset.services).map(([n, s]) => [n, byService.has(n) ? unplaced(s) : s])) };
  const modules = await validateBundle(checkOnly, options);

  await updateDeployment(options.home, existing.name, (d) => {
    for (const m of newMachines) (d.machines ??= {})[m.id] = m;
  });
  const spawnOpts = { ...(options.logLevel ? { logLevel: options.logLevel } : {}), ...(options.noFsync ? { noFsync: true } : {}) };
  const added: string[] = [];
  const total = fresh.reduce((n, s) => n + s.units, 0);
  if (total > 0) options.onPhase?.(`adding ${fresh.map((s) => s.name).join(', ')} to the running deployment ${existing.name}: ${total} unit(s)`);
  for (const s of fresh) {
    for (let i = 0; i < s.units; i++) {
      const machine = s.to?.[i];
      const u = await startNewUnit(options.home, existing.name, { service: s.name, charmDir: s.charmDir, options: s.options, ...(machine !== undefined ? { machine } : {}), ...(modules[s.name] ? { charmModule: modules[s.name] } : {}), ...(s.dashboard !== undefined ? { dashboard: s.dashboard } : {}) }, spawnOpts);
      added.push(u.unit);
    }
  }
  let d = await readDeployment(options.home, existing.name);
  if (newRelations.length > 0) {
    options.onPhase?.(`relating ${newRelations.map(([a, b]) => `${a} ${b}`).join(', ')}`);
    for (const [a, b] of newRelations) await relate(d, a, b, 30_000);
    d = await updateDeployment(options.home, existing.name, (rec) => {
      const have = new Set(rec.relations.map(relationKey));
      rec.relations = [...rec.relations, ...newRelations.filter((r) => !have.has(relationKey(r)))];
      return rec;
    });
  }
  if (options.wait === false || liveUnits(d).length === 0) return { deployment: d, added, related: newRelations, notes };
  options.onPhase?.('waiting for convergence');
  const ms = await waitForConvergence(d, {
    reload: () => readDeployment(options.home, existing.name),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  return { deployment: d, added, related: newRelations, notes, convergedInMs: ms };
}

/**
 * What `rhizome deploy BUNDLE` does: a fresh deploy (deploy.ts), or, when
 * the bundle's deployment runs, `extendDeployment`.
 */
export async function deployBundle(bundlePath: string, options: DeployOptions): Promise<{ deployment: Deployment; convergedInMs?: number; extended?: ExtendResult }> {
  const { readBundle } = await import('./bundle');
  const bundle = await readBundle(bundlePath);
  const existing = await readDeployment(options.home, bundle.name).catch(() => undefined);
  if (existing === undefined || liveUnits(existing).length === 0) return deploy(bundlePath, options);
  const extended = await extendDeployment(existing, bundle, options);
  return { deployment: extended.deployment, ...(extended.convergedInMs !== undefined ? { convergedInMs: extended.convergedInMs } : {}), extended };
}
