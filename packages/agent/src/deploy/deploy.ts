/**
 * Local deployments: every unit of a bundle as its own detached agent
 * process on this machine, running the compiled CLI
 * (`node <agent package>/dist/bin.js agent --config <data dir>/agent.yaml`,
 * see runtime.ts), each with its own data directory
 * `<home>/<name>/<unit with / as ->/` and OS-chosen ports. The unit's whole
 * configuration (charm options included) is in its `agent.yaml` (mode 0600),
 * not on the command line, where `ps` would show it to every user.
 *
 * Charms are compiled and type-checked before any agent starts
 * (charm/compile.ts, cached by content hash); a charm that does not compile
 * or type-check fails the deploy with the compiler's message. The first unit started is the seed of the others; a
 * (re)started unit is given every live unit as seeds.
 *
 * A unit counts as started when its `agent.json` (written once the agent
 * serves its control API and gossips) names the new process's pid. A unit
 * whose process exits before that failed to start: the error carries the
 * tail of its output (e.g. the charm load error naming the file).
 *
 * Before a unit starts, the workload daemons its charm declares are
 * recorded in its data dir (workloads.ts); once its agent is gone (stopped,
 * destroyed, or killed earlier), `destroy` and `stop` end whichever of them
 * still run, so no workload outlives its unit. `kill` leaves them: it is a
 * crash, and the restarted unit takes its daemons over.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, open, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AGENT_INFO_FILE } from '../agent-info';
import { agentConfigText } from '../agent-config-file';
import { AgentError } from '../errors';
import { ensureKeyringFile } from '../keys/keyring-file';
import { ensurePrivateDir, PRIVATE_FILE_MODE, tightenFile } from '../internal/private-fs';
import { agentCommand } from '../runtime';
import { waitForConvergence, type ConvergenceCheck } from './converge';
import { deploymentKeyringFile, syncDeploymentKeyring } from './keyring-sync';
import { prepareCharm } from './validate';
import { cleanMachine, killRemoteUnit, prepareMachine, remoteDataDir, removeRemoteDir, startRemoteUnit, stopRemoteUnit } from './remote';
import { recordWorkloads, stopUnitWorkloads, type StopWorkloadsOptions, type WorkloadReport } from './workloads';
import {
  clientFor,
  compareUnitNames,
  deploymentDir,
  isAlive,
  liveUnits,
  allocateUnitNumber,
  unitAlive,
  type MachineRecord,
  readAgentInfo,
  readDeployment,
  recordPid,
  resolveDeploymentName,
  unitDirName,
  unitOf,
  updateDeployment,
  withUnitLock,
  writeDeployment,
  type DeployedUnit,
  type Deployment,
} from './deployment';

/** A unit's agent config file, in its data dir (mode 0600: it holds the charm options). */
export const AGENT_CONFIG_FILE = 'agent.yaml';

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

/** Writes `<unit data dir>/agent.yaml` (0600) for a unit and returns its path. */
export async function writeAgentConfig(
  u: DeployedUnit,
  seeds: readonly string[],
  opts: { logLevel?: string | undefined; keyringFile?: string | undefined; label?: string | undefined } = {},
): Promise<string> {
  const file = join(u.dataDir, AGENT_CONFIG_FILE);
  const config = {
    unit: u.unit,
    charmDir: u.charmDir,
    ...(u.charmModule !== undefined ? { charmModule: u.charmModule } : {}),
    dataDir: u.dataDir,
    seeds: [...seeds],
    ...(opts.logLevel ? { logLevel: opts.logLevel } : {}),
    ...(opts.keyringFile !== undefined ? { keyringFile: opts.keyringFile } : {}),
    ...(opts.label !== undefined ? { label: opts.label } : {}),
    ...(u.dashboard !== undefined ? { dashboard: u.dashboard } : {}),
    options: u.options,
  };
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `# written by rhizome deploy for ${u.unit}; rewritten whenever the unit is (re)started\n${agentConfigText(config)}`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
  return file;
}

export interface DeployResult {
  readonly deployment: Deployment;
  readonly convergedInMs?: number;
}

const START_TIMEOUT_MS = 60_000;

async function tail(file: string, bytes = 2000): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.slice(-bytes).trim();
  } catch {
    return '';
  }
}

export { deploymentKeyringFile, prepareCharm };

/** The deployment's cluster label: agents of two deployments never merge. */
export function deploymentLabel(d: Pick<Deployment, 'name'>): string {
  return `rhizome-${d.name}`;
}

/**
 * Starts one unit's agent process and waits until it serves. The unit's
 * charm is compiled first unless `u.charmModule` names an existing compiled
 * module (deploy compiles each charm once; add-unit and start clear it, so
 * they compile and type-check the charm as it is now: cached when unchanged).
 */
export async function spawnUnit(
  d: Deployment,
  u: DeployedUnit,
  seeds: readonly string[],
  opts: { logLevel?: string; noFsync?: boolean; charmCache?: string } = {},
): Promise<DeployedUnit> {
  await ensurePrivateDir(u.dataDir);
  await unlink(join(u.dataDir, AGENT_INFO_FILE)).catch(() => undefined);
  if (u.charmModule === undefined || !existsSync(u.charmModule)) u.charmModule = await prepareCharm(u.charmDir, { charmCache: opts.charmCache });
  // Before the agent can start any daemon: destroy must find them even if this agent is killed.
  await recordWorkloads(u);
  // Secure by default: every deployment has a keyring (made once, 0600) and a label.
  const keyringFile = deploymentKeyringFile(d);
  await ensureKeyringFile(keyringFile);
  const configFile = await writeAgentConfig(u, seeds, { logLevel: opts.logLevel, keyringFile, label: deploymentLabel(d) });
  const outFile = join(u.dataDir, 'agent.out');
  const out = await open(outFile, 'a', PRIVATE_FILE_MODE);
  await tightenFile(outFile);
  // --data-dir repeats the file's: it makes the unit's process recognizable in ps (and /proc/PID/cmdline).
  const cmd = agentCommand(configFile, ['--data-dir', u.dataDir, ...(opts.noFsync ? ['--no-fsync'] : [])]);
  const child = spawn(cmd.command, [...cmd.args], { detached: true, stdio: ['ignore', out.fd, out.fd], cwd: process.cwd(), env: { ...process.env, RHIZOME_DEPLOYMENT: d.name } });
  await out.close();
  let exited: number | string | undefined;
  child.once('exit', (code, signal) => {
    exited = code ?? signal ?? 'unknown';
  });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new AgentError('AGENT_ERR_DEPLOY', `could not start the agent of ${u.unit} (${process.execPath})`);
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const info = await readAgentInfo(u.dataDir);
    if (info && info.pid === pid) {
      await recordPid(u, pid);
      u.controlUrl = info.controlUrl;
      u.gossipAddress = info.gossipAddress;
      u.state = 'running';
      return u;
    }
    if (exited !== undefined) {
      throw new AgentError('AGENT_ERR_DEPLOY', `the agent of ${u.unit} exited (${exited}) before it started:\n${await tail(outFile)}`);
    }
    if (Date.now() > deadline) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
      throw new AgentError('AGENT_ERR_DEPLOY', `the agent of ${u.unit} did not start within ${START_TIMEOUT_MS / 1000} s:\n${await tail(outFile)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function newUnit(d: Deployment, service: string, index: number, charmDir: string, options: DeployedUnit['options'], machine?: string, dashboard?: string | number): DeployedUnit {
  const unit = `${service}/${index}`;
  const m = machine !== undefined ? machineOf(d, machine) : undefined;
  const placed = m ? { machine: m.id, ...(m.ssh !== undefined ? { ssh: m.ssh } : {}) } : {};
  const dataDir = m?.ssh !== undefined ? remoteDataDir(m, d.name, unitDirName(unit)) : join(deploymentDir(d.home, d.name), unitDirName(unit));
  return { unit, service, charmDir, dataDir, options, pid: 0, controlUrl: '', gossipAddress: '', state: 'stopped', ...placed, ...(dashboard !== undefined ? { dashboard } : {}) };
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
async function startAnywhere(d: Deployment, u: DeployedUnit, seeds: readonly string[], opts: { logLevel?: string; noFsync?: boolean }): Promise<DeployedUnit> {
  if (u.ssh === undefined) return spawnUnit(d, u, seeds, opts);
  const keyringFile = deploymentKeyringFile(d);
  await ensureKeyringFile(keyringFile);
  // The live cluster's keys, not the ones made at deploy: `rhizome keys` may have rotated them since.
  await syncDeploymentKeyring(d, keyringFile);
  return startRemoteUnit(d, u, machineOf(d, u.machine!), seeds, { keyringFile, label: deploymentLabel(d), ...opts });
}

/**
 * The seeds a (re)started unit is given: the running units, then every other
 * unit's last address. A unit that is down now keeps its address when it
 * comes back (see mesh/rejoin.ts), and the agent keeps trying its seeds while
 * it knows no live member, so two units started while the other was down
 * still meet.
 */
function seedsOf(d: Deployment, except: string): string[] {
  const live = liveUnits(d).filter((u) => u.unit !== except && u.gossipAddress !== '');
  const rest = Object.values(d.units).filter((u) => u.unit !== except && u.gossipAddress !== '' && !live.includes(u));
  return [...new Set([...live, ...rest].map((u) => u.gossipAddress))];
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
    // Nothing of it runs (crashed, or killed): a fresh deploy must not resurrect its old state,
    // nor find its ports taken by the daemons its killed units left behind.
    const left = await stopWorkloadsOf(Object.values(existing.units));
    for (const r of left) if (r.outcome !== 'not-running') options.onPhase?.(`${r.unit}: ${r.detail}`);
    // Its remote units too: supervisors and workloads stopped, its directory removed on every machine.
    const remoteLeft = Object.values(existing.units).filter((u) => u.ssh !== undefined);
    for (const r of (await Promise.all(remoteLeft.map((u) => stopRemoteUnit(existing, u)))).flat()) if (r.outcome !== 'not-running') options.onPhase?.(`${r.unit}: ${r.detail}`);
    await Promise.all(Object.values(existing.machines ?? {}).filter((m) => m.ssh !== undefined).map((m) => cleanMachine(m, existing.name)));
    options.onPhase?.(`removing the stopped deployment ${bundle.name} left in ${dir}`);
    await rm(dir, { recursive: true, force: true });
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

/** Asks a live unit to relate two endpoints; retries while the services are not all in its mesh view yet. */
export async function relate(d: Deployment, a: string, b: string, timeoutMs = 30_000, remove = false): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const live = liveUnits(d);
    if (live.length === 0) throw new AgentError('AGENT_ERR_NOT_RUNNING', `no unit of deployment "${d.name}" is running`);
    const target = live.find((u) => u.service === a.split(':')[0]) ?? live[0]!;
    try {
      const client = await clientFor(target);
      return await client.json('POST', remove ? '/unrelate' : '/relate', { a, b });
    } catch (err) {
      const text = (err as Error).message;
      const retriable = /is known to the mesh/.test(text);
      if (!retriable || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** The fields a start, kill or stop changes. */
function unitProgress(u: DeployedUnit): Partial<DeployedUnit> {
  return { pid: u.pid, pidStartTicks: u.pidStartTicks, controlUrl: u.controlUrl, gossipAddress: u.gossipAddress, state: u.state, supervisor: u.supervisor, supervisorPid: u.supervisorPid, charmModule: u.charmModule, release: u.release };
}

/** Copies what a start, kill or stop learned about `u` into the record (under its lock); a unit removed meanwhile stays removed. */
async function recordUnit(home: string, name: string, u: DeployedUnit): Promise<void> {
  await updateDeployment(home, name, (d) => {
    const r = d.units[u.unit];
    if (r) Object.assign(r, unitProgress(u));
  });
}

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
  // Placed with --to, else beside the service's first unit.
  const machine = opts.to ?? known.machine;
  const dashboard = known.dashboard !== undefined ? { dashboard: known.dashboard } : {};
  return startNewUnit(home, name, { service, charmDir: known.charmDir, options: known.options, ...(machine !== undefined ? { machine } : {}), ...(charmModule ? { charmModule } : {}), ...dashboard }, opts);
}

/** What a new unit is made of (add-unit takes it from the service's first unit, deploy onto a running deployment from the bundle). */
export interface NewUnitSpec {
  readonly service: string;
  readonly charmDir: string;
  readonly options: DeployedUnit['options'];
  readonly machine?: string;
  /** The charm already compiled for `charmDir`. */
  readonly charmModule?: string;
  readonly dashboard?: string | number;
}

/** Records a new unit of `spec.service` under the next free number and starts it where it is placed. */
export async function startNewUnit(home: string, name: string, spec: NewUnitSpec, opts: { logLevel?: string; noFsync?: boolean } = {}): Promise<DeployedUnit> {
  const u = await updateDeployment(home, name, (d) => {
    if (spec.machine !== undefined) machineOf(d, spec.machine);
    const created = newUnit(d, spec.service, allocateUnitNumber(d, spec.service), spec.charmDir, spec.options, spec.machine, spec.dashboard);
    if (spec.charmModule !== undefined) created.charmModule = spec.charmModule;
    d.units[created.unit] = created;
    return created;
  });
  return withUnitLock(home, name, u.unit, async () => {
    const d = await readDeployment(home, name);
    try {
      await startAnywhere(d, u, seedsOf(d, u.unit), opts);
    } finally {
      await recordUnit(home, name, u);
    }
    return u;
  });
}

/** Restarts a stopped or killed unit from its data directory. */
export async function startUnit(home: string, unit: string, opts: { deployment?: string; logLevel?: string; noFsync?: boolean } = {}): Promise<DeployedUnit> {
  const name = await resolveDeploymentName(home, opts.deployment);
  return withUnitLock(home, name, unit, async () => {
    const d = await readDeployment(home, name);
    const u = unitOf(d, unit);
    if (u.state === 'running' && unitAlive(u)) throw new AgentError('AGENT_ERR_DEPLOY', `unit ${unit} is already running (pid ${u.pid})`);
    // The charm as it is now (cached when unchanged), type-checked before the agent starts.
    u.charmModule = await prepareCharm(u.charmDir);
    try {
      await startAnywhere(d, u, seedsOf(d, u.unit), opts);
    } finally {
      await recordUnit(home, name, u);
    }
    return u;
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

/** What `destroy` and `stop` did to the workloads units left behind (every declared one, `not-running` included). */
export interface WorkloadsStopped {
  readonly workloads: WorkloadReport[];
}

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
  // Remote units: stop each supervisor (and agent) on its machine, then clean the machine.
  const remoteUnits = Object.values(d.units).filter((u) => u.ssh !== undefined);
  const remoteWorkloads = (await Promise.all(remoteUnits.map((u) => stopRemoteUnit(d, u)))).flat();
  if (!opts.keep) {
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
  const workloads = [...remoteWorkloads, ...(await stopWorkloadsOf(Object.values(d.units), opts.workloads))];
  if (opts.keep) await writeDeployment(d);
  else await rm(deploymentDir(d.home, d.name), { recursive: true, force: true });
  return { ...d, workloads };
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
    const workloads = await stopAgentAndWorkloads(u, opts.workloads, current);
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
    return stopRemoteUnit(d ?? { name: '' }, u);
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

/** The workloads of units whose agents are gone, stopped (units with a live agent are skipped: it owns them). */
async function stopWorkloadsOf(units: readonly DeployedUnit[], opts?: StopWorkloadsOptions): Promise<WorkloadReport[]> {
  const gone = units.filter((u) => u.ssh === undefined && !isAlive(u.pid));
  return (await Promise.all(gone.map((u) => stopUnitWorkloads(u, opts)))).flat();
}

export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

export async function waitExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !isAlive(pid);
}

