/**
 * Machines for SSH deployment tests: each one a network namespace on a
 * bridge, running a real OpenSSH server (Debian's openssh-server) on the
 * namespace's address, with a host key generated here, an authorized key
 * generated here and its own sshd_config. The system's sshd is never
 * touched. All namespaces share this filesystem, which is fine: agents are
 * still only ever reached over SSH, and each machine gets its own dir.
 *
 * Names carry a prefix (`ssh-` by default) and a random tag (parallel runs
 * never collide); addresses are in a /24 no interface here uses yet, in
 * 10.232.0.0/16 unless told another /16. `cleanup()` ends every process
 * left in the namespaces (only processes this harness started live there:
 * its sshd and what was started through it), deletes the namespaces and the
 * bridge, and is safe to call twice.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll } from 'vitest';
import { destroy } from '@rhizome/agent';
import { until } from '@rhizome/test-support';
import { closeSshConnections } from '../packages/agent/src/deploy/remote';

const run = promisify(execFile);

export interface SshMachine {
  readonly ns: string;
  readonly address: string;
  /** `root@ADDRESS`, as a bundle's `ssh:` names it. */
  readonly ssh: string;
  /** The machine's unit root (bundle `dir:`). */
  readonly dir: string;
  readonly sshd: ChildProcess;
}

export interface SshHosts {
  readonly machines: readonly SshMachine[];
  /** An ssh_config for these machines (key, known hosts): set RHIZOME_SSH_CONFIG to it. */
  readonly sshConfig: string;
  /** Pids of every process in a machine's namespace. */
  pidsIn(m: SshMachine): Promise<number[]>;
  cleanup(): Promise<void>;
}

/** Why SSH host tests cannot run here, or undefined when they can. */
export async function sshHostsUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  for (const bin of ['/usr/sbin/sshd', '/usr/bin/ssh', '/usr/bin/ssh-keygen']) {
    try {
      await run(bin, ['-V']).catch((e: { code?: string }) => {
        if (e.code === 'ENOENT') throw e;
      });
    } catch {
      return `${bin} is missing (scripts/ensure-apt.sh openssh-server openssh-client)`;
    }
  }
  const probe = `ssh-p${Math.random().toString(16).slice(2, 8)}`;
  try {
    await run('ip', ['netns', 'add', probe]);
    await run('ip', ['netns', 'del', probe]);
  } catch (err) {
    return `cannot create network namespaces (${(err as Error).message.split('\n')[0]})`;
  }
  return undefined;
}

export interface SshHostsOptions {
  /** Machines whose SSH sessions have a PATH without Node.js (sshd's SetEnv). */
  readonly withoutNode?: readonly number[];
  /** Names the namespaces, veths and bridge (default `ssh`; at most 4 characters, interface names are short). */
  readonly prefix?: string;
  /** The first two octets of the machines' /24 (default `10.232`). */
  readonly subnet?: string;
}

/** Starts `count` machines under `root`. */
export async function startSshHosts(root: string, count: number, opts: SshHostsOptions = {}): Promise<SshHosts> {
  const tag = Math.random().toString(16).slice(2, 6);
  const subnet = await freeSubnet(opts.subnet ?? '10.232');
  const prefix = opts.prefix ?? 'ssh';
  const bridge = `${prefix}-${tag}-br`;
  const machines: SshMachine[] = [];
  const namespaces: string[] = [];
  const veths: string[] = [];
  let bridgeMade = false;
  const cleanup = async () => {
    for (const m of machines) m.sshd.kill('SIGKILL');
    for (const ns of namespaces) {
      const pids = await nsPids(ns);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    }
    namespaces.length = 0;
    // A veth's host end normally goes with its namespace, but not while anything still holds the
    // namespace open (seen after a long manual session): delete each one by name too.
    for (const veth of veths) await run('ip', ['link', 'del', veth]).catch(() => undefined);
    veths.length = 0;
    if (bridgeMade) await run('ip', ['link', 'del', bridge]).catch(() => undefined);
    bridgeMade = false;
  };
  try {
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
    await mkdir(root, { recursive: true });
    const clientKey = join(root, 'client_key');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'rhizome-test', '-f', clientKey]);
    await writeFile(join(root, 'authorized_keys'), await readFile(`${clientKey}.pub`), { mode: 0o600 });
    await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
    bridgeMade = true;
    await run('ip', ['addr', 'add', `${subnet}.1/24`, 'dev', bridge]);
    await run('ip', ['link', 'set', bridge, 'up']);
    // The machines are set up side by side (each is a dozen short commands and
    // an sshd start): allSettled, so that a failure cleans up only once every
    // set-up has stopped adding namespaces, veths and processes.
    const makeMachine = async (i: number): Promise<{ machine: SshMachine; knownHost: string }> => {
      const ns = `${prefix}-${tag}-${i}`;
      const veth = `${prefix}-${tag}-v${i}`;
      const address = `${subnet}.${10 + i}`;
      await run('ip', ['netns', 'add', ns]);
      namespaces.push(ns);
      await run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      veths.push(veth);
      await run('ip', ['link', 'set', veth, 'master', bridge, 'up']);
      await run('ip', ['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      const hdir = join(root, `m${i}`);
      await mkdir(hdir, { recursive: true });
      const hostKey = join(hdir, 'host_key');
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
      const pub = (await readFile(`${hostKey}.pub`, 'utf8')).trim().split(' ').slice(0, 2).join(' ');
      const config = [
        `ListenAddress ${address}`,
        'Port 22',
        `HostKey ${hostKey}`,
        `AuthorizedKeysFile ${join(root, 'authorized_keys')}`,
        `PidFile ${join(hdir, 'sshd.pid')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'LogLevel ERROR',
        'MaxSessions 50',
        'MaxStartups 50:30:100',
        ...(opts.withoutNode?.includes(i) ? ['SetEnv PATH=/nonexistent'] : []),
      ].join('\n');
      await writeFile(join(hdir, 'sshd_config'), `${config}\n`);
      const sshd = spawn('ip', ['netns', 'exec', ns, '/usr/sbin/sshd', '-D', '-e', '-f', join(hdir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      sshd.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
      sshd.on('exit', (code) => {
        if (code !== null && code !== 0) process.stderr.write(`sshd of ${ns} exited ${code}: ${stderr}\n`);
      });
      return { machine: { ns, address, ssh: `root@${address}`, dir: join(hdir, 'units'), sshd }, knownHost: `${address} ${pub}` };
    };
    const made = await Promise.allSettled(Array.from({ length: count }, (_, i) => makeMachine(i)));
    for (const m of made) if (m.status === 'fulfilled') machines.push(m.value.machine);
    const failed = made.find((m) => m.status === 'rejected');
    if (failed) throw failed.reason;
    const knownHosts = made.flatMap((m) => (m.status === 'fulfilled' ? [m.value.knownHost] : []));
    const knownHostsFile = join(root, 'known_hosts');
    await writeFile(knownHostsFile, `${knownHosts.join('\n')}\n`);
    const sshConfig = join(root, 'ssh_config');
    await writeFile(
      sshConfig,
      [`Host ${subnet}.*`, '  User root', `  IdentityFile ${clientKey}`, '  IdentitiesOnly yes', `  UserKnownHostsFile ${knownHostsFile}`, '  StrictHostKeyChecking yes', '  LogLevel ERROR', ''].join('\n'),
    );
    await Promise.all(
      machines.map((m) => until(`sshd on ${m.address}`, async () => (await run('ssh', ['-F', sshConfig, '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=2', m.ssh, 'true'])).stdout !== undefined, 15_000)),
    );
    return { machines, sshConfig, pidsIn: (m) => nsPids(m.ns), cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * A /24 under `first16` that no interface here has an address in: test files
 * run side by side, and two bridges with the same subnet would take each
 * other's routes.
 */
async function freeSubnet(first16: string): Promise<string> {
  const { stdout } = await run('ip', ['-4', '-o', 'addr', 'show']);
  const used = new Set([...stdout.matchAll(/inet (\d+\.\d+\.\d+)\.\d+\//g)].map((m) => m[1]));
  const free = Array.from({ length: 250 }, (_, i) => `${first16}.${1 + i}`).filter((s) => !used.has(s));
  if (free.length === 0) throw new Error(`no free /24 under ${first16}.0.0/16 for SSH test machines: delete stale bridges (ip -4 addr show)`);
  return free[Math.floor(Math.random() * free.length)]!;
}

async function nsPids(ns: string): Promise<number[]> {
  try {
    const { stdout } = await run('ip', ['netns', 'pids', ns]);
    return stdout.split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A test file's machines and its deployment's home, as `useSshMachines` made them. */
export interface SshTestbed {
  /** A fresh temporary directory holding `home` and the machines' files. */
  readonly root: string;
  /** The RHIZOME home of the test's deployments. */
  readonly home: string;
  readonly hosts: SshHosts;
}

/**
 * Registers the beforeAll and afterAll of a test file that deploys to SSH
 * machines: before, `count` machines under a fresh `<tmp>/<tmpPrefix>…`
 * directory, RHIZOME_SSH_CONFIG pointing at them, and `ready` given where
 * everything is; after, the deployment `name` destroyed, the shared SSH
 * connections closed, the machines and the directory removed. Nothing is
 * done when `unavailable` (sshHostsUnavailable's reason) is set.
 */
export function useSshMachines(opts: { readonly unavailable: string | undefined; readonly name: string; readonly tmpPrefix: string; readonly count: number; readonly hosts?: SshHostsOptions }, ready: (bed: SshTestbed) => void): void {
  let root: string | undefined;
  let hosts: SshHosts | undefined;
  beforeAll(async () => {
    if (opts.unavailable) return;
    root = await mkdtemp(join(tmpdir(), opts.tmpPrefix));
    hosts = await startSshHosts(join(root, 'hosts'), opts.count, opts.hosts);
    process.env['RHIZOME_SSH_CONFIG'] = hosts.sshConfig;
    ready({ root, home: join(root, 'home'), hosts });
  }, 60_000);
  afterAll(async () => {
    // Also after a failed start: whatever was made is removed.
    if (opts.unavailable || root === undefined) return;
    await destroy(join(root, 'home'), { deployment: opts.name }).catch(() => undefined);
    await closeSshConnections();
    await hosts?.cleanup();
    await rm(root, { recursive: true, force: true });
  }, 90_000);
}
