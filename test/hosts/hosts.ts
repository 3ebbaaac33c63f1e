/**
 * Hosts for multi-host tests: each host is a network namespace with one
 * interface (`eth0`, the caller's address) plugged into a bridge, and its own
 * loopback. The bridge lives in a namespace of its own (the "switch"), so
 * nothing is added to the machine's own network and the root namespace's
 * firewall (bridge netfilter, Docker's FORWARD policy) never sees the
 * traffic: deleting the namespaces deletes everything.
 *
 * Layout for prefix `mh-a` and three hosts:
 *
 *   mh-a-sw   bridge `br0`, ports mh-as1 mh-as2 mh-as3
 *   mh-a-h1   lo, eth0 = addresses[0]   (peer of mh-as1)
 *   mh-a-h2   lo, eth0 = addresses[1]
 *   mh-a-h3   lo, eth0 = addresses[2]
 *
 * Faults are made inside the hosts, as on real machines: a link goes down
 * (the switch port is set down: the host sees no error, packets just stop),
 * a partition drops packets on INPUT between groups (iptables DROP, so a
 * sender sees a black hole rather than an instant EPERM), and loss drops a
 * random share of incoming packets (`-m statistic --mode random`; this kernel
 * has no netem qdisc).
 *
 * Cleanup always runs: `cleanup()` (call it in `afterAll`/`finally`), and, as
 * a safety net, on process exit and on SIGINT/SIGTERM. It kills the processes
 * this harness started (by PID, with their process group), then any process
 * still inside one of its namespaces, then deletes every namespace with the
 * prefix (also stale ones from an earlier crashed run, at creation).
 */
import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { isIP } from 'node:net';
import { HostsError, mustRun, runCommand, runSyncQuietly, type CommandResult } from './run.js';

export interface CreateHostsOptions {
  /** Names every namespace and switch port (`<prefix>-h1`, `<prefix>s1`); letters, digits and `-`, at most 8 characters. */
  readonly prefix: string;
  /** One IPv4 address per host, all in one subnet of `prefixLength` bits. */
  readonly addresses: readonly string[];
  /** Subnet size of the hosts' addresses (default 24). */
  readonly prefixLength?: number;
}

export interface SpawnOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Keeps at most this many characters of stdout+stderr (default 256 KiB; the start is dropped first). */
  readonly maxOutput?: number;
}

/** A long-lived process started inside a host. */
export interface HostProcess {
  readonly host: Host;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Everything written to stdout and stderr so far (bounded, the tail kept). */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** Sends a signal to the process and its process group; resolves when it has exited (SIGKILL after `graceMs`). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export interface Host {
  /** 1-based. */
  readonly index: number;
  /** The namespace name (`ip netns exec <name> ...`). */
  readonly name: string;
  readonly address: string;
  /** Runs a command inside the host to completion. */
  exec(cmd: string, args?: readonly string[], options?: { timeoutMs?: number }): Promise<CommandResult>;
  /** Starts a long-lived process inside the host; `cleanup()` stops it if the test did not. */
  spawn(cmd: string, args?: readonly string[], options?: SpawnOptions): HostProcess;
}

const PREFIX_RE = /^[a-z][a-z0-9-]{0,7}$/;
const SWITCH_BRIDGE = 'br0';
const PART_CHAIN = 'HOSTS-PART';
const LOSS_CHAIN = 'HOSTS-LOSS';

/** A set of hosts on one bridge. */
export class HostNetwork {
  readonly hosts: readonly Host[];
  private readonly processes = new Set<HostProcess>();
  private closed = false;

  private constructor(
    readonly prefix: string,
    readonly prefixLength: number,
    addresses: readonly string[],
  ) {
    this.hosts = addresses.map((address, i) => this.makeHost(i + 1, address));
  }

  /** The switch namespace (holds the bridge). */
  get switchName(): string {
    return `${this.prefix}-sw`;
  }

  /** Creates the namespaces, the bridge and one link per host. Deletes stale namespaces with the prefix first. */
  static async create(options: CreateHostsOptions): Promise<HostNetwork> {
    const { prefix, addresses } = options;
    const prefixLength = options.prefixLength ?? 24;
    if (!PREFIX_RE.test(prefix)) {
      throw new HostsError('HOSTS_ERR_BAD_OPTION', `prefix ${JSON.stringify(prefix)} must be 1-8 lower-case letters, digits or '-' starting with a letter (interface names are limited to 15 characters)`);
    }
    if (addresses.length === 0 || addresses.length > 64) {
      throw new HostsError('HOSTS_ERR_BAD_OPTION', `between 1 and 64 hosts, got ${addresses.length}`);
    }
    for (const a of addresses) {
      if (isIP(a) !== 4) throw new HostsError('HOSTS_ERR_BAD_OPTION', `host address ${JSON.stringify(a)} is not an IPv4 address`);
      if (a.startsWith('127.')) throw new HostsError('HOSTS_ERR_BAD_OPTION', `host address ${a} is a loopback address; choose one inside a private range`);
    }
    if (new Set(addresses).size !== addresses.length) throw new HostsError('HOSTS_ERR_BAD_OPTION', 'host addresses must be distinct');
    if (!Number.isInteger(prefixLength) || prefixLength < 8 || prefixLength > 30) {
      throw new HostsError('HOSTS_ERR_BAD_OPTION', `prefixLength must be an integer in 8..30, got ${prefixLength}`);
    }
    await deleteNamespacesWithPrefix(prefix);
    const net = new HostNetwork(prefix, prefixLength, addresses);
    live.add(net);
    installExitHandlers();
    try {
      await net.build();
    } catch (err) {
      await net.cleanup();
      throw err;
    }
    return net;
  }

  private async build(): Promise<void> {
    const sw = this.switchName;
    await mustRun('ip', ['netns', 'add', sw]);
    await mustRun('ip', ['-n', sw, 'link', 'set', 'lo', 'up']);
    await mustRun('ip', ['-n', sw, 'link', 'add', SWITCH_BRIDGE, 'type', 'bridge']);
    await mustRun('ip', ['-n', sw, 'link', 'set', SWITCH_BRIDGE, 'up']);
    // Hosts are wired side by side (a dozen short commands each); allSettled,
    // so that a failure is cleaned up only once no set-up is still adding.
    const wired = await Promise.allSettled(this.hosts.map((host) => this.wire(host)));
    const failed = wired.find((w) => w.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** One host's namespace, its veth into the switch, its address and its fault chains. */
  private async wire(host: Host): Promise<void> {
    const sw = this.switchName;
    const port = this.portName(host);
    await mustRun('ip', ['netns', 'add', host.name]);
    await mustRun('ip', ['link', 'add', port, 'netns', sw, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.name]);
    await mustRun('ip', ['-n', sw, 'link', 'set', port, 'master', SWITCH_BRIDGE]);
    await mustRun('ip', ['-n', sw, 'link', 'set', port, 'up']);
    await mustRun('ip', ['-n', host.name, 'link', 'set', 'lo', 'up']);
    await mustRun('ip', ['-n', host.name, 'addr', 'add', `${host.address}/${this.prefixLength}`, 'dev', 'eth0']);
    await mustRun('ip', ['-n', host.name, 'link', 'set', 'eth0', 'up']);
    // Our own chains, hooked into INPUT, so faults can be flushed without touching anything else.
    for (const chain of [PART_CHAIN, LOSS_CHAIN]) {
      await this.iptables(host, ['-N', chain]);
      await this.iptables(host, ['-A', 'INPUT', '-j', chain]);
    }
  }

  private portName(host: Host): string {
    return `${this.prefix}s${host.index}`;
  }

  private makeHost(index: number, address: string): Host {
    const name = `${this.prefix}-h${index}`;
    const host: Host = {
      index,
      name,
      address,
      exec: (cmd, args = [], options = {}) => runCommand('ip', ['netns', 'exec', name, cmd, ...args], options),
      spawn: (cmd, args = [], options = {}) => this.spawnIn(host, cmd, args, options),
    };
    return host;
  }

  private spawnIn(host: Host, cmd: string, args: readonly string[], options: SpawnOptions): HostProcess {
    if (this.closed) throw new HostsError('HOSTS_ERR_BAD_OPTION', `host network ${this.prefix} was cleaned up; create a new one`);
    // `ip netns exec` execs the command, so the child's PID is the command's.
    // Its own process group lets stop() reach whatever the command started.
    const child = spawnChild('ip', ['netns', 'exec', host.name, cmd, ...args], {
      env: options.env ?? process.env,
      cwd: options.cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const max = options.maxOutput ?? 256 * 1024;
    let out = '';
    const append = (chunk: Buffer): void => {
      out += chunk.toString('utf8');
      if (out.length > max) out = out.slice(out.length - max);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    const exited = new Promise<number | string>((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
      child.once('error', () => resolve('spawn-error'));
    });
    const pid = child.pid;
    if (pid === undefined) throw new HostsError('HOSTS_ERR_COMMAND', `could not start ${cmd} in ${host.name}`);
    let done = false;
    void exited.then(() => (done = true));
    const proc: HostProcess = {
      host,
      pid,
      child,
      output: () => out,
      exited,
      stop: async (signal = 'SIGTERM', graceMs = 5_000) => {
        if (!done) signalGroup(pid, signal);
        const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
        if ((await Promise.race([exited, timer])) === 'timeout') {
          signalGroup(pid, 'SIGKILL');
          await Promise.race([exited, new Promise((r) => setTimeout(r, 2_000).unref())]);
        }
        this.processes.delete(proc);
      },
    };
    this.processes.add(proc);
    void exited.then(() => this.processes.delete(proc));
    return proc;
  }

  /** Runs iptables inside a host. */
  async iptables(host: Host, args: readonly string[]): Promise<void> {
    await mustRun('ip', ['netns', 'exec', host.name, 'iptables', '-w', '5', ...args]);
  }

  /** Pulls a host's cable: its switch port goes down; packets stop both ways, the host sees no error. */
  async linkDown(host: Host): Promise<void> {
    await mustRun('ip', ['-n', this.switchName, 'link', 'set', this.portName(host), 'down']);
  }

  async linkUp(host: Host): Promise<void> {
    await mustRun('ip', ['-n', this.switchName, 'link', 'set', this.portName(host), 'up']);
  }

  /** Splits the hosts into groups that cannot reach each other (every packet between groups dropped on arrival). */
  async partition(...groups: readonly (readonly Host[])[]): Promise<void> {
    for (const [gi, group] of groups.entries()) {
      const others = groups.filter((_, j) => j !== gi).flat();
      for (const host of group) {
        for (const other of others) await this.iptables(host, ['-A', PART_CHAIN, '-s', other.address, '-j', 'DROP']);
      }
    }
  }

  /** Removes every partition rule. */
  async heal(): Promise<void> {
    for (const host of this.hosts) await this.iptables(host, ['-F', PART_CHAIN]);
  }

  /** Drops a random share `probability` (0..1) of the packets a host receives; 0 removes the loss. */
  async setLoss(host: Host, probability: number): Promise<void> {
    if (!(probability >= 0 && probability <= 1)) throw new HostsError('HOSTS_ERR_BAD_OPTION', `loss probability must be in 0..1, got ${probability}`);
    await this.iptables(host, ['-F', LOSS_CHAIN]);
    if (probability > 0) {
      await this.iptables(host, ['-A', LOSS_CHAIN, '-m', 'statistic', '--mode', 'random', '--probability', String(probability), '-j', 'DROP']);
    }
  }

  /** Stops every process started here, then deletes every namespace with the prefix. Idempotent. */
  async cleanup(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.processes].map((p) => p.stop('SIGTERM', 3_000).catch(() => undefined)));
    this.processes.clear();
    await deleteNamespacesWithPrefix(this.prefix);
    live.delete(this);
  }

  /** The synchronous cleanup of exit handlers: SIGKILL, then delete. */
  cleanupSync(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.processes) signalGroup(p.pid, 'SIGKILL');
    this.processes.clear();
    for (const ns of namespacesWithPrefixSync(this.prefix)) {
      killNamespaceProcessesSync(ns);
      runSyncQuietly('ip', ['netns', 'del', ns]);
    }
    live.delete(this);
  }
}

/** Creates hosts; see HostNetwork. */
export function createHosts(options: CreateHostsOptions): Promise<HostNetwork> {
  return HostNetwork.create(options);
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
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

function ownsNamespace(prefix: string, ns: string): boolean {
  return ns === `${prefix}-sw` || new RegExp(`^${prefix.replace(/-/g, '\\-')}-h\\d+$`).test(ns);
}

function parseNetnsList(text: string, prefix: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((ns) => ns !== '' && ownsNamespace(prefix, ns));
}

function namespacesWithPrefixSync(prefix: string): string[] {
  return parseNetnsList(runSyncQuietly('ip', ['netns', 'list']), prefix);
}

/** Processes still inside one of our namespaces were started by us (directly or not): end them by PID. */
function killNamespaceProcessesSync(ns: string): void {
  for (const pid of runSyncQuietly('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean).map(Number)) {
    if (Number.isInteger(pid) && pid > 1 && pid !== process.pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

async function deleteNamespacesWithPrefix(prefix: string): Promise<void> {
  const list = await runCommand('ip', ['netns', 'list']);
  for (const ns of parseNetnsList(list.stdout, prefix)) {
    killNamespaceProcessesSync(ns);
    await runCommand('ip', ['netns', 'del', ns]);
  }
}

// ---- safety net: cleanup on exit and signals -------------------------------

const live = new Set<HostNetwork>();
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const net of [...live]) net.cleanupSync();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      for (const net of [...live]) net.cleanupSync();
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

// ---- availability ----------------------------------------------------------

let availability: Promise<string | undefined> | undefined;

/**
 * Why namespace tests cannot run here, or undefined when they can (root,
 * `ip netns` and `iptables` work). Checked once per process, by creating and
 * deleting a probe namespace.
 */
export function netnsUnavailableReason(): Promise<string | undefined> {
  availability ??= probe();
  return availability;
}

/** True when this process can create network namespaces and run iptables in them. */
export async function canUseNetns(): Promise<boolean> {
  return (await netnsUnavailableReason()) === undefined;
}

async function probe(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'network namespace tests need root (run as root, as CI does)';
  const ns = `hostsprobe-${process.pid}`;
  try {
    const add = await runCommand('ip', ['netns', 'add', ns]);
    if (add.code !== 0) return `\`ip netns add\` failed: ${add.stderr.trim()}`;
    const ipt = await runCommand('ip', ['netns', 'exec', ns, 'iptables', '-w', '5', '-S']);
    if (ipt.code !== 0) return `iptables does not work inside a namespace: ${ipt.stderr.trim()}`;
    return undefined;
  } catch (err) {
    return `\`ip\` or \`iptables\` is not available: ${(err as Error).message}`;
  } finally {
    await runCommand('ip', ['netns', 'del', ns]).catch(() => undefined);
  }
}
