/**
 * Units on other machines, reached with OpenSSH (ssh.ts). On a machine,
 * under its `dir`:
 *
 *   cache/<hash>/agent.mjs, supervisor.mjs     the release (release.ts)
 *   cache/<hash>/charm.mjs                     each charm, its other files beside it
 *   <deployment>/keyring                       the deployment's keyring (0600)
 *   <deployment>/<unit>/agent.yaml             the agent's config (0600)
 *   <deployment>/<unit>/...                    its data dir (state, logs, agent.json)
 *
 * Deploying first checks every machine (reachable, Node.js >= 20) before
 * anything is written anywhere, so a machine that cannot run agents leaves
 * nothing half-deployed. The agent binds 0.0.0.0 and advertises the
 * machine's address; it runs under a supervisor that restarts it when it
 * dies: a transient systemd unit (`systemd-run`, Restart=always) where
 * systemd runs the machine, otherwise rhizome-supervisor
 * (supervisor-main.ts), started detached.
 *
 * Liveness is read from the machine (one SSH command per machine per read
 * of the record): each unit's agent.json and supervisor.json, and whether
 * the pids they name are alive (`kill -0`).
 */
import { readFile } from 'node:fs/promises';
import { ControlClient } from '../control/client';
import { agentConfigText } from '../agent-config-file';
import { AgentError } from '../errors';
import { AGENT_NODE_FLAGS } from '../runtime';
import { agentArtifact, charmArtifact, charmArtifacts, dashboardVendorArtifact, supervisorArtifact, type Artifact } from './release';
import { parseSshTarget, shellQuote, SshHost } from './ssh';
import type { DeployedUnit, Deployment, MachineRecord } from './deployment-record';
import type { WorkloadReport } from './workloads';

/** Node.js major version the agent needs. */
export const MIN_NODE_MAJOR = 20;

const hosts = new Map<string, SshHost>();

/** The (shared) SSH connection to a destination. */
export function sshHostFor(ssh: string, label?: string): SshHost {
  let h = hosts.get(ssh);
  if (!h) {
    h = new SshHost(parseSshTarget(ssh), label ?? ssh);
    hosts.set(ssh, h);
  }
  return h;
}

/** Ends every SSH connection this process opened (their masters otherwise linger for ControlPersist). */
export async function closeSshConnections(): Promise<void> {
  await Promise.all([...hosts.values()].map((h) => h.close()));
  hosts.clear();
}

export function machineLabel(m: MachineRecord): string {
  // add-machine checks a machine before it has an id.
  if (m.id === '?') return `machine ${m.ssh ?? 'local'}`;
  return m.ssh === undefined ? `machine ${m.id} (local)` : `machine ${m.id} (${m.ssh})`;
}

function hostOf(m: MachineRecord): SshHost {
  if (m.ssh === undefined || m.dir === undefined) throw new AgentError('AGENT_ERR_DEPLOY', `${machineLabel(m)} is not reached over SSH`);
  return sshHostFor(m.ssh, machineLabel(m));
}

/** The address agents on machine `m` advertise: the host of its SSH destination. */
export function machineAddress(m: MachineRecord): string {
  return parseSshTarget(m.ssh ?? '').host;
}

export interface MachineCheck {
  readonly machine: MachineRecord;
  readonly nodeVersion: string;
  readonly supervisor: 'systemd' | 'rhizome-supervisor';
}

/**
 * Checks that a machine is reachable and runs Node.js >= 20, and finds its
 * supervisor. Writes nothing. A failure names the machine and says how to fix it.
 */
export async function checkMachine(m: MachineRecord): Promise<MachineCheck> {
  const host = hostOf(m);
  const script = [
    'if ! command -v node >/dev/null 2>&1; then echo RZ_NO_NODE; exit 0; fi',
    `node -e 'process.stdout.write("RZ_NODE " + process.versions.node + "\\n")'`,
    // systemd supervises only where it is PID 1 and systemd-run exists.
    'if [ -d /run/systemd/system ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && command -v systemd-run >/dev/null 2>&1; then echo RZ_SYSTEMD; fi',
  ].join('\n');
  const out = await host.check(script, 'checking for Node.js');
  if (out.includes('RZ_NO_NODE')) {
    throw new AgentError('AGENT_ERR_NO_NODE', `${machineLabel(m)} has no Node.js on its PATH: install Node.js >= ${MIN_NODE_MAJOR} there (e.g. from nodesource or your distribution) and try again; nothing was written anywhere`);
  }
  const version = /RZ_NODE (\S+)/.exec(out)?.[1] ?? '';
  const major = Number(version.split('.')[0]);
  if (!(major >= MIN_NODE_MAJOR)) {
    throw new AgentError('AGENT_ERR_NO_NODE', `${machineLabel(m)} runs Node.js ${version || '(unknown version)'}; rhizome needs Node.js >= ${MIN_NODE_MAJOR}: upgrade it and try again; nothing was written anywhere`);
  }
  return { machine: m, nodeVersion: version, supervisor: out.includes('RZ_SYSTEMD') ? 'systemd' : 'rhizome-supervisor' };
}

function cachePath(m: MachineRecord, a: Artifact): string {
  return `${m.dir}/cache/${a.hash}/${a.name}`;
}

/** Copies the artifacts the machine lacks (by content hash); returns the paths copied. */
export async function installArtifacts(m: MachineRecord, artifacts: readonly Artifact[]): Promise<string[]> {
  const host = hostOf(m);
  const paths = artifacts.map((a) => cachePath(m, a));
  const out = await host.check(`for f in ${paths.map(shellQuote).join(' ')}; do [ -f "$f" ] || echo "$f"; done`, 'looking for the cached release');
  const missing = new Set(out.split('\n').filter(Boolean));
  const copied: string[] = [];
  for (const a of artifacts) {
    const path = cachePath(m, a);
    if (!missing.has(path)) continue;
    await host.writeFile(path, a.bytes, a.mode ?? 0o644);
    copied.push(path);
  }
  return copied;
}

/** Where this release's agent module is (or goes) on machine `m`. */
export async function releasePath(m: MachineRecord): Promise<string> {
  return cachePath(m, await agentArtifact());
}

/** A unit's data dir on its machine. */
export function remoteDataDir(m: MachineRecord, deployment: string, unitDir: string): string {
  return `${m.dir}/${deployment}/${unitDir}`;
}

const checked = new Map<string, Promise<MachineCheck>>();
const prepared = new Map<string, Promise<void>>();

/**
 * Gets a machine ready for units of `charmDirs` (once per process and
 * content): checked, release and charms copied where missing, the
 * deployment's keyring in place (0600).
 */
export function prepareMachine(m: MachineRecord, deployment: string, charmDirs: readonly string[], keyringFile: string): Promise<void> {
  const key = `${m.ssh}|${m.dir}|${deployment}|${[...charmDirs].sort().join('|')}`;
  let p = prepared.get(key);
  if (!p) {
    p = (async () => {
      const ck = `${m.ssh}|${m.dir}`;
      if (!checked.has(ck)) checked.set(ck, checkMachine(m));
      await checked.get(ck)!;
      const [agent, supervisor] = await Promise.all([agentArtifact(), supervisorArtifact()]);
      const charms = (await Promise.all(charmDirs.map((c) => charmArtifacts(c)))).flat();
      // The dashboard's page script beside the agent: the bundled agent has no node_modules to find it in.
      await installArtifacts(m, [agent, supervisor, ...charms, await dashboardVendorArtifact(agent)]);
      await hostOf(m).writeFile(`${m.dir}/${deployment}/keyring`, await readFile(keyringFile), 0o600);
    })();
    prepared.set(key, p);
    p.catch(() => prepared.delete(key));
  }
  return p;
}

export interface RemoteStartOptions {
  readonly logLevel?: string;
  readonly noFsync?: boolean;
  readonly keyringFile: string;
  readonly label: string;
  /** The agent module to run, already on the machine (`upgrade-model` rolling a unit back to its release); default: this release's. */
  readonly agentPath?: string;
}

const START_WAIT_TENTHS = 600;

function systemdUnitName(d: Pick<Deployment, 'name'>, u: DeployedUnit): string {
  return `rhizome-${d.name}-${u.unit.replace(/\//g, '-')}`;
}

/**
 * Starts a unit's agent on its machine under the supervisor, and waits until
 * it serves (its agent.json names a live pid). Copies what the machine lacks
 * first. Mutates `u` with the agent's pid and addresses.
 */
export async function startRemoteUnit(d: Deployment, u: DeployedUnit, m: MachineRecord, seeds: readonly string[], opts: RemoteStartOptions): Promise<DeployedUnit> {
  const host = hostOf(m);
  await prepareMachine(m, d.name, [u.charmDir], opts.keyringFile);
  const check = await checked.get(`${m.ssh}|${m.dir}`)!;
  const [agent, supervisor, charm] = await Promise.all([agentArtifact(), supervisorArtifact(), charmArtifact(u.charmDir)]);
  const keyringPath = `${m.dir}/${d.name}/keyring`;
  const configFile = `${u.dataDir}/agent.yaml`;
  const config = {
    unit: u.unit,
    charmDir: `${m.dir}/cache/${charm.hash}`,
    dataDir: u.dataDir,
    // Port 0, not 7946: a machine may run several units; each keeps its port across restarts (mesh.json).
    bind: '0.0.0.0:0',
    advertise: machineAddress(m),
    profile: 'lan',
    seeds: [...seeds],
    keyringFile: keyringPath,
    label: opts.label,
    options: u.options,
    ...(opts.logLevel ? { logLevel: opts.logLevel } : {}),
    ...(u.dashboard !== undefined ? { dashboard: u.dashboard } : {}),
  };
  const agentPath = opts.agentPath ?? cachePath(m, agent);
  const agentCmd = ['node', ...AGENT_NODE_FLAGS, agentPath, 'agent', '--config', configFile, ...(opts.noFsync ? ['--no-fsync'] : [])].map(shellQuote).join(' ');
  const D = shellQuote(u.dataDir);
  const launch =
    check.supervisor === 'systemd'
      ? `systemctl stop ${shellQuote(systemdUnitName(d, u))} >/dev/null 2>&1; systemctl reset-failed ${shellQuote(systemdUnitName(d, u))} >/dev/null 2>&1; systemd-run --quiet --collect --unit=${shellQuote(systemdUnitName(d, u))} --property=Restart=always --property=RestartSec=1 --working-directory=${D} sh -c ${shellQuote(`exec ${agentCmd} >> ${D}/agent.out 2>&1`)} || exit 5`
      : `setsid nohup node ${shellQuote(cachePath(m, supervisor))} ${D} -- ${agentCmd} >> ${D}/supervisor.out 2>&1 < /dev/null &`;
  // Config, start, then wait (bounded) on the machine itself: one round trip, not one per step or poll.
  const script = `umask 077 && mkdir -p ${D} && chmod 700 ${D} && cd ${D} || exit 6
printf '%s' ${shellQuote(agentConfigText(config))} > agent.yaml.tmp && mv -f agent.yaml.tmp agent.yaml || exit 7
rm -f agent.json supervisor.json
${launch}
i=0
while [ $i -lt ${START_WAIT_TENTHS} ]; do
  if [ -s agent.json ]; then p=$(sed -n 's/.*"pid": *\\([0-9][0-9]*\\).*/\\1/p' agent.json); if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then echo RZ_AGENT; cat agent.json; echo; echo RZ_SUPERVISOR; cat supervisor.json 2>/dev/null; exit 0; fi; fi
  if [ $i -gt 5 ] && [ -s supervisor.json ]; then s=$(sed -n 's/.*"pid": *\\([0-9][0-9]*\\).*/\\1/p' supervisor.json); if [ -n "$s" ] && ! kill -0 "$s" 2>/dev/null; then echo RZ_EXITED; tail -c 2000 agent.out; exit 3; fi; fi
  sleep 0.1; i=$((i+1))
done
echo RZ_TIMEOUT; tail -c 2000 agent.out; exit 4`;
  const r = await host.run(script, { timeoutMs: 120_000 });
  if (r.code !== 0 || !r.stdout.includes('RZ_AGENT')) {
    const why = r.stdout.includes('RZ_EXITED') ? 'exited before it started' : r.stdout.includes('RZ_TIMEOUT') ? `did not start within ${START_WAIT_TENTHS / 10} s` : `could not be started (exit ${r.code})`;
    const detail = r.stdout.replace(/^RZ_\w+\n?/m, '').trim() || r.stderr.trim();
    throw new AgentError('AGENT_ERR_DEPLOY', `the agent of ${u.unit} on ${machineLabel(m)} ${why}:\n${detail.slice(-2000)}`);
  }
  const [agentPart, supPart] = r.stdout.split('RZ_SUPERVISOR');
  const info = JSON.parse(agentPart!.slice(agentPart!.indexOf('RZ_AGENT') + 'RZ_AGENT'.length).trim()) as { pid: number; controlUrl: string; gossipAddress: string };
  const sup = supPart?.trim() ? (JSON.parse(supPart.trim()) as { pid?: number }) : undefined;
  u.pid = info.pid;
  u.pidStartTicks = undefined;
  u.controlUrl = info.controlUrl;
  u.gossipAddress = info.gossipAddress;
  u.state = 'running';
  u.alive = true;
  u.supervisor = check.supervisor;
  u.supervisorPid = sup?.pid;
  u.release = agentPath;
  return u;
}

/** Reads, per machine in one SSH command, whether each remote unit's agent (and supervisor) lives, and its current pid and addresses. */
export async function refreshRemoteUnits(units: readonly DeployedUnit[]): Promise<void> {
  const byHost = new Map<string, DeployedUnit[]>();
  for (const u of units) byHost.set(u.ssh!, [...(byHost.get(u.ssh!) ?? []), u]);
  await Promise.all(
    [...byHost].map(async ([ssh, list]) => {
      const script = list
        .map(
          (u) =>
            `d=${shellQuote(u.dataDir)}; a=$(tr -d '\\n' < "$d/agent.json" 2>/dev/null); s=$(tr -d '\\n' < "$d/supervisor.json" 2>/dev/null); ` +
            `ap=$(printf %s "$a" | sed -n 's/.*"pid": *\\([0-9][0-9]*\\).*/\\1/p'); sp=$(printf %s "$s" | sed -n 's/.*"pid": *\\([0-9][0-9]*\\).*/\\1/p'); ` +
            `aa=0; [ -n "$ap" ] && kill -0 "$ap" 2>/dev/null && aa=1; sa=0; [ -n "$sp" ] && kill -0 "$sp" 2>/dev/null && sa=1; ` +
            `printf 'RZ\\t%s\\t%s\\t%s\\t%s\\n' ${shellQuote(u.unit)} "$aa" "$sa" "$a"`,
        )
        .join('\n');
      let out = '';
      try {
        // Bounded by the connect timeout and a little: a machine that does not answer reads as down, at once.
        out = (await sshHostFor(ssh).run(script, { timeoutMs: 15_000 })).stdout;
      } catch {
        out = '';
      }
      const seen = new Map<string, string[]>();
      for (const line of out.split('\n')) {
        const parts = line.split('\t');
        if (parts[0] === 'RZ' && parts[1]) seen.set(parts[1], parts);
      }
      for (const u of list) {
        const parts = seen.get(u.unit);
        // Unreachable machine: the unit counts as down until it answers again.
        u.alive = parts?.[2] === '1';
        u.unreachable = parts === undefined && out === '';
        if (!parts) continue;
        if (parts[4]) {
          try {
            const info = JSON.parse(parts[4]) as { pid: number; controlUrl: string; gossipAddress: string };
            if (u.alive && info.pid !== u.pid) {
              // Restarted by its supervisor: a new pid and control port.
              u.pid = info.pid;
              u.controlUrl = info.controlUrl;
              u.gossipAddress = info.gossipAddress;
            }
          } catch {
            // agent.json being rewritten: next read
          }
        }
      }
    }),
  );
}

const tokens = new Map<string, string>();

/** A control client for a remote unit: its loopback control port, forwarded over the machine's SSH connection. */
export async function remoteClient(u: DeployedUnit, timeoutMs: number): Promise<ControlClient> {
  const host = sshHostFor(u.ssh!);
  const key = `${u.ssh}|${u.dataDir}`;
  let token = tokens.get(key);
  if (token === undefined) {
    token = (await host.check(`cat ${shellQuote(`${u.dataDir}/control.token`)}`, `reading the control token of ${u.unit}`)).trim();
    tokens.set(key, token);
  }
  const port = Number(new URL(u.controlUrl).port);
  const local = await host.forward(port);
  return new ControlClient({ url: `http://127.0.0.1:${local}`, token, timeoutMs, name: `the agent of ${u.unit} on ${u.ssh} (over SSH)` });
}

/** SIGKILLs a remote unit's agent (a crash, for tests): its supervisor starts it again. */
export async function killRemoteUnit(u: DeployedUnit): Promise<void> {
  await sshHostFor(u.ssh!).check(`kill -9 ${u.pid}`, `killing the agent of ${u.unit} (pid ${u.pid})`);
}

/**
 * Stops a remote unit for good (until started again): the supervisor is
 * told to stop (it SIGTERMs the agent, which leaves the mesh); after 25 s
 * whatever still runs is SIGKILLed. Resolves when neither runs, with what
 * happened to the unit's workload daemons (stopped on the machine).
 */
export async function stopRemoteUnit(d: Pick<Deployment, 'name'>, u: DeployedUnit, opts: { removeData?: boolean } = {}): Promise<WorkloadReport[]> {
  await sshHostFor(u.ssh!).check(stopScript(d, u, 'TERM'), `stopping ${u.unit}`, { timeoutMs: 60_000 });
  u.alive = false;
  return stopRemoteWorkloads(u, opts.removeData === true);
}

/**
 * Stops a remote unit's agent for a restart (`rhizome upgrade-model`): it
 * gets SIGUSR2 (through its supervisor, which then exits instead of
 * restarting it), so it stays in the mesh and its workloads keep running
 * for the agent started next. Under systemd the agent gets SIGUSR2 and the
 * unit is then stopped, so that systemd does not start the old command
 * again. Resolves when neither runs (SIGKILL after 25 s).
 */
export async function stopRemoteForRestart(d: Pick<Deployment, 'name'>, u: DeployedUnit): Promise<void> {
  await sshHostFor(u.ssh!).check(stopScript(d, u, 'USR2'), `stopping ${u.unit} for a restart`, { timeoutMs: 60_000 });
  u.alive = false;
}

/** The shell script that stops a unit's supervisor and agent with SIGTERM (for good) or SIGUSR2 (for a restart), bounded. */
function stopScript(d: Pick<Deployment, 'name'>, u: DeployedUnit, signal: 'TERM' | 'USR2'): string {
  const D = shellQuote(u.dataDir);
  const pidOf = (file: string) => `$(sed -n 's/.*"pid": *\\([0-9][0-9]*\\).*/\\1/p' ${D}/${file} 2>/dev/null)`;
  const name = shellQuote(systemdUnitName(d, u));
  if (u.supervisor === 'systemd') {
    // The agent's stop is idempotent: the SIGTERM of `systemctl stop` joins the restart stop begun by SIGUSR2.
    const first = signal === 'USR2' ? `systemctl kill --kill-who=main --signal=SIGUSR2 ${name} >/dev/null 2>&1; ` : '';
    return `${first}systemctl stop ${name} >/dev/null 2>&1; exit 0`;
  }
  // For a restart a process counts as gone once it is a zombie (Z in /proc/PID/stat): the detached
  // supervisor's parent is init, which may reap it late, and the new agent needs only the old one
  // to have exited. A stop for good waits until it is reaped (no process of the unit left at all).
  const gone = signal === 'USR2' ? `st=$(sed -n 's/^.*) \\(.\\).*/\\1/p' /proc/$p/stat 2>/dev/null); [ "$st" = Z ] || alive=1` : 'alive=1';
  return `sp=${pidOf('supervisor.json')}; ap=${pidOf('agent.json')}
[ -n "$sp" ] && kill -${signal} "$sp" 2>/dev/null
[ -z "$sp" ] && [ -n "$ap" ] && kill -${signal} "$ap" 2>/dev/null
i=0
while [ $i -lt 250 ]; do
  alive=0
  for p in $sp $ap; do if kill -0 "$p" 2>/dev/null; then ${gone}; fi; done
  [ $alive = 0 ] && exit 0
  sleep 0.1; i=$((i+1))
done
for p in $sp $ap; do kill -9 "$p" 2>/dev/null; done
exit 0`;
}

/**
 * Once a remote unit's agent is gone: stops the workload daemons its
 * workloads.json (written by the agent at start) names, on its machine,
 * with the agent's own code (`stop-workloads`). Reports as for a local unit.
 */
async function stopRemoteWorkloads(u: DeployedUnit, removeData: boolean): Promise<WorkloadReport[]> {
  if (u.release === undefined) return [];
  const host = sshHostFor(u.ssh!);
  const r = await host.run(`[ -f ${shellQuote(`${u.dataDir}/workloads.json`)} ] || { echo '[]'; exit 0; }; node ${shellQuote(u.release)} --data-dir ${shellQuote(u.dataDir)} stop-workloads${removeData ? ' --remove-data' : ''}`, { timeoutMs: 60_000 });
  try {
    return (JSON.parse(r.stdout) as WorkloadReport[]).map((w) => ({ ...w, unit: u.unit }));
  } catch {
    return [{ unit: u.unit, name: 'workloads.json', pidFile: `${u.dataDir}/workloads.json`, outcome: 'unreadable', detail: `could not stop the workloads of ${u.unit} on its machine: ${(r.stderr.trim() || r.stdout.trim()).slice(-300)}` }];
  }
}

/** Deletes a remote unit's data dir. */
export async function removeRemoteDir(u: DeployedUnit): Promise<void> {
  await sshHostFor(u.ssh!).check(`rm -rf ${shellQuote(u.dataDir)}`, `removing ${u.dataDir}`);
}

/**
 * After the deployment's units on a machine are stopped: removes the
 * deployment's directory there, and the release cache and the machine dir
 * too once no other deployment uses them (nothing left behind).
 */
export async function cleanMachine(m: MachineRecord, deployment: string): Promise<void> {
  const dir = m.dir!;
  await hostOf(m).check(
    `rm -rf ${shellQuote(`${dir}/${deployment}`)}; if [ -d ${shellQuote(dir)} ] && [ -z "$(ls -A ${shellQuote(dir)} | grep -v '^cache$')" ]; then rm -rf ${shellQuote(`${dir}/cache`)}; rmdir ${shellQuote(dir)} 2>/dev/null; fi; exit 0`,
    `removing ${dir}/${deployment}`,
  );
}

