/**
 * A unit's agent as a detached process on this machine, running the
 * compiled CLI (`node <agent package>/dist/bin.js agent --config <data
 * dir>/agent.yaml`, see runtime.ts), with its own data directory
 * `<home>/<name>/<unit with / as ->/` and OS-chosen ports. The unit's whole
 * configuration (charm options included) is in its `agent.yaml` (mode 0600),
 * not on the command line, where `ps` would show it to every user.
 *
 * A unit counts as started when its `agent.json` (written once the agent
 * serves its control API and gossips) names the new process's pid. A unit
 * whose process exits before that failed to start: the error carries the
 * tail of its output (e.g. the charm load error naming the file).
 *
 * Before a unit starts, the workload daemons its charm declares are
 * recorded in its data dir (workloads.ts), so that whoever stops the unit
 * later finds them even if this agent is killed.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AGENT_INFO_FILE } from '../agent-info';
import { agentConfigText } from '../agent-config-file';
import { AgentError } from '../errors';
import { ensureKeyringFile } from '../keys/keyring-file';
import { ensurePrivateDir, PRIVATE_FILE_MODE, tightenFile } from '../internal/private-fs';
import { agentCommand } from '../runtime';
import { deploymentLabel, isAlive, readAgentInfo, recordPid, type DeployedUnit, type Deployment } from './deployment';
import { deploymentKeyringFile } from './keyring-sync';
import { prepareCharm } from './validate';
import { recordWorkloads } from './workloads';

/** A unit's agent config file, in its data dir (mode 0600: it holds the charm options). */
export const AGENT_CONFIG_FILE = 'agent.yaml';

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

const START_TIMEOUT_MS = 60_000;

async function tail(file: string, bytes = 2000): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.slice(-bytes).trim();
  } catch {
    return '';
  }
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

/** Signals a unit's process group (its agent and what it started), else the process alone. */
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

/** Polls until `pid` has exited; false if it still runs after `timeoutMs`. */
export async function waitExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !isAlive(pid);
}
