/**
 * The unit's ZooKeeper server: its files, how it is started and stopped, and
 * how the charm talks to it (four-letter words for health and role, the
 * Java CLI for `reconfig`).
 *
 * Layout under the unit's dir:
 *   zk/conf/zoo.cfg            static config (ZooKeeper rewrites its dynamicConfigFile line)
 *   zk/conf/zoo.cfg.dynamic*   membership; after a reconfig ZooKeeper writes new versions itself
 *   zk/data/myid               this server's id (unit number + 1)
 *   zk/zookeeper.pid           written by the charm right after it spawns the JVM
 *   zk/server.log              the JVM's output
 *
 * The JVM runs in its own session (detached) so it survives a SIGKILLed
 * agent like any daemon; the charm declares it as a workload by its pid file,
 * so `rhizome stop`/`destroy` end it even then.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { WorkloadPidFile } from '@rhizome/agent';
import type { ZookeeperConfig } from './config';
import type { ZkServer } from './interfaces';

export function zkFiles(unitDir: string) {
  const root = join(unitDir, 'zk');
  return {
    root,
    conf: join(root, 'conf'),
    cfg: join(root, 'conf', 'zoo.cfg'),
    dynamic: join(root, 'conf', 'zoo.cfg.dynamic'),
    data: join(root, 'data'),
    myid: join(root, 'data', 'myid'),
    /** Written by ZooKeeper when this server accepts a new epoch (joins a quorum, a new leader is elected). */
    currentEpoch: join(root, 'data', 'version-2', 'currentEpoch'),
    pid: join(root, 'zookeeper.pid'),
    log: join(root, 'server.log'),
  };
}

/** The unit's server as a workload: the JVM's command line names QuorumPeerMain and this unit's zoo.cfg. */
export function zookeeperWorkload(unitDir: string): WorkloadPidFile {
  return { name: 'zookeeper', pidFile: zkFiles(unitDir).pid, cmdline: ['QuorumPeerMain', zkFiles(unitDir).cfg] };
}

/** This unit's server: id = unit number + 1, ports = bases + unit number. */
export function serverOf(unit: string, host: string, cfg: ZookeeperConfig): ZkServer {
  const n = Number(unit.slice(unit.lastIndexOf('/') + 1));
  if (!Number.isInteger(n) || n < 0 || n > 254) throw new Error(`zookeeper server ids are 1-255: unit ${unit} cannot have one (unit numbers 0-254)`);
  return { id: n + 1, host, quorumPort: cfg.quorumPort + n, electionPort: cfg.electionPort + n, clientPort: cfg.clientPort + n };
}

/** One `server.N=` line of ZooKeeper's dynamic config. */
export function serverLine(s: ZkServer): string {
  return `server.${s.id}=${s.host}:${s.quorumPort}:${s.electionPort}:participant;${s.host}:${s.clientPort}`;
}

/** Parses `server.N=` lines (from `conf`, a dynamic config file or `reconfig`'s answer). */
export function parseServerLines(text: string): ZkServer[] {
  const out: ZkServer[] = [];
  for (const line of text.split('\n')) {
    const m = /^server\.(\d+)=([^:;\s]+):(\d+):(\d+)(?::[a-z]+)?;(?:([^:;\s]+):)?(\d+)\s*$/.exec(line.trim());
    if (!m) continue;
    out.push({ id: Number(m[1]), host: m[2]!, quorumPort: Number(m[3]), electionPort: Number(m[4]), clientPort: Number(m[6]) });
  }
  return out.sort((a, b) => a.id - b.id);
}

/** The membership version in a `conf`/`reconfig` answer (`version=100000002`), if any. */
export function parseConfigVersion(text: string): string | undefined {
  return /^version=([0-9a-f]+)\s*$/m.exec(text)?.[1];
}

/** ZooKeeper's super-user digest for `secret`: base64(sha1("super:" + secret)), as DigestAuthenticationProvider computes it. */
export function superDigest(secret: string): string {
  return `super:${createHash('sha1').update(`super:${secret}`).digest('base64')}`;
}

/** zoo.cfg's initLimit and syncLimit, in ticks: how long a follower may take to connect and sync, and to answer. */
export const INIT_LIMIT_TICKS = 20;
export const SYNC_LIMIT_TICKS = 10;

export function renderStaticConfig(unitDir: string, cfg: ZookeeperConfig): string {
  const f = zkFiles(unitDir);
  return [
    '# Rendered by the rhizome zookeeper charm. ZooKeeper rewrites dynamicConfigFile after a reconfig.',
    `tickTime=${cfg.tickMs}`,
    `initLimit=${INIT_LIMIT_TICKS}`,
    `syncLimit=${SYNC_LIMIT_TICKS}`,
    `dataDir=${f.data}`,
    // Membership changes through reconfig, never by editing files on a running server.
    'standaloneEnabled=false',
    'reconfigEnabled=true',
    // The AdminServer would take port 8080 on every unit.
    'admin.enableServer=false',
    '4lw.commands.whitelist=srvr,mntr,conf,ruok',
    'autopurge.snapRetainCount=3',
    'autopurge.purgeInterval=1',
    `dynamicConfigFile=${f.dynamic}`,
    '',
  ].join('\n');
}

export function renderDynamicConfig(servers: readonly ZkServer[]): string {
  return [...servers].sort((a, b) => a.id - b.id).map(serverLine).join('\n') + '\n';
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Writes the unit's config for a first start with `servers` (which include this one); a no-op once written (ZooKeeper owns it then). */
export async function writeInitialConfig(unitDir: string, cfg: ZookeeperConfig, me: ZkServer, servers: readonly ZkServer[]): Promise<boolean> {
  const f = zkFiles(unitDir);
  if (await exists(f.cfg)) return false;
  await mkdir(f.conf, { recursive: true, mode: 0o700 });
  await mkdir(f.data, { recursive: true, mode: 0o700 });
  await writeFile(f.myid, `${me.id}\n`, { mode: 0o600 });
  await writeFile(f.dynamic, renderDynamicConfig(servers), { mode: 0o600 });
  // zoo.cfg last: its presence means "configured".
  await writeFile(f.cfg, renderStaticConfig(unitDir, cfg), { mode: 0o600 });
  return true;
}

/** Forgets a server that never joined an ensemble (config and data), so it can start over as a joiner. */
export async function resetServer(unitDir: string): Promise<void> {
  const f = zkFiles(unitDir);
  await rm(f.conf, { recursive: true, force: true });
  await rm(f.data, { recursive: true, force: true });
}

export async function isConfigured(unitDir: string): Promise<boolean> {
  return exists(zkFiles(unitDir).cfg);
}

/** The pid of the unit's running server, if its pid file names a live QuorumPeerMain of this unit. */
export async function serverPid(unitDir: string): Promise<number | undefined> {
  const f = zkFiles(unitDir);
  const pid = Number.parseInt((await readFile(f.pid, 'utf8').catch(() => '')).trim(), 10);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (/^\d+ \(.*\) [ZX] /.test(stat)) return undefined;
  return cmdline.includes('QuorumPeerMain') && cmdline.includes(f.cfg) ? pid : undefined;
}

/**
 * zookeeper.jar's manifest names its dependencies. The server gets
 * slf4j-simple so its log lines reach server.log; the CLI gets no logger, so
 * its output is only the answers the charm parses.
 */
function classpath(role: 'server' | 'cli'): string {
  return role === 'server' ? '/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar' : '/usr/share/java/zookeeper.jar';
}

function jvmArgs(cfg: ZookeeperConfig): string[] {
  return [`-Xmx${cfg.heapMb}m`, '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Djava.net.preferIPv4Stack=true'];
}

export class ZookeeperMissingError extends Error {
  readonly code = 'ZK_ERR_MISSING';
  constructor(what: string) {
    super(`${what} is not installed; install Debian's ZooKeeper with 'scripts/ensure-apt.sh zookeeper default-jre-headless' (the charm runs its own server per unit on high ports, never the system service)`);
    this.name = 'ZookeeperMissingError';
  }
}

/** Starts the unit's server in its own session and records its pid; resolves once it answers `ruok` (bounded). */
export async function startServer(unitDir: string, cfg: ZookeeperConfig, secret: string, timeoutMs = 60_000): Promise<number> {
  const running = await serverPid(unitDir);
  if (running !== undefined) return running;
  if (!(await exists('/usr/share/java/zookeeper.jar'))) throw new ZookeeperMissingError('/usr/share/java/zookeeper.jar');
  const f = zkFiles(unitDir);
  const log = await open(f.log, 'a', 0o600);
  let pid: number;
  try {
    const child = spawn(
      cfg.java,
      [...jvmArgs(cfg), `-Dzookeeper.DigestAuthenticationProvider.superDigest=${superDigest(secret)}`, '-cp', classpath('server'), 'org.apache.zookeeper.server.quorum.QuorumPeerMain', f.cfg],
      { detached: true, stdio: ['ignore', log.fd, log.fd], cwd: f.root },
    );
    pid = await new Promise<number>((resolve, reject) => {
      child.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'ENOENT' ? new ZookeeperMissingError(`'${cfg.java}' (a Java runtime)`) : err));
      child.once('spawn', () => resolve(child.pid!));
    });
    child.unref();
  } finally {
    await log.close();
  }
  await writeFile(f.pid, `${pid}\n`, { mode: 0o600 });
  const me = parseInt((await readFile(f.myid, 'utf8')).trim(), 10);
  // The client port listens on the server's own (advertised) address, not on loopback.
  const self = parseServerLines(await readDynamic(unitDir)).find((s) => s.id === me);
  if (self === undefined) throw new Error(`zookeeper: server ${me} is not in its own dynamic config (${f.conf})`);
  const { host, clientPort: port } = self;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await fourLetterWord(host, port, 'ruok', 1_000).catch(() => '');
    if (answer === 'imok') return pid;
    if ((await serverPid(unitDir)) === undefined) {
      const tail = (await readFile(f.log, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');
      throw new Error(`zookeeper server ${me} exited at start; the end of ${f.log}:\n${tail}`);
    }
    if (Date.now() > deadline) throw new Error(`zookeeper server ${me} did not answer ruok on ${host}:${port} within ${timeoutMs} ms (see ${f.log})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The membership file ZooKeeper currently starts from (the path zoo.cfg names). */
async function readDynamic(unitDir: string): Promise<string> {
  const cfgText = await readFile(zkFiles(unitDir).cfg, 'utf8');
  const path = /^dynamicConfigFile=(.+)$/m.exec(cfgText)?.[1]?.trim() ?? zkFiles(unitDir).dynamic;
  return readFile(path, 'utf8');
}

/** Stops the unit's server: SIGTERM, then SIGKILL after a bounded wait. */
export async function stopServer(unitDir: string, timeoutMs = 10_000): Promise<void> {
  const pid = await serverPid(unitDir);
  if (pid === undefined) return;
  const signal = (s: NodeJS.Signals): void => {
    try {
      process.kill(pid, s);
    } catch {
      // gone
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && (await serverPid(unitDir)) !== undefined) await new Promise((r) => setTimeout(r, 100));
  if ((await serverPid(unitDir)) !== undefined) signal('SIGKILL');
  await rm(zkFiles(unitDir).pid, { force: true });
}

/** Sends a four-letter word (`ruok`, `srvr`, `conf`, `mntr`) and returns the answer. */
export function fourLetterWord(host: string, port: number, word: 'ruok' | 'srvr' | 'conf' | 'mntr', timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`zookeeper ${host}:${port} did not answer ${word} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.end(word));
    socket.on('data', (d: string) => {
      if (answer.length < 64 * 1024) answer += d;
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(answer.trim());
    });
  });
}

/** The server's role (`leader`, `follower`, `observer`...) from `srvr`, or undefined while it serves no quorum. */
export async function serverMode(host: string, port: number): Promise<string | undefined> {
  const srvr = await fourLetterWord(host, port, 'srvr').catch(() => '');
  return /^Mode: (\S+)/m.exec(srvr)?.[1];
}

/**
 * Waits (bounded) until the server serves a quorum: `srvr` reports a mode.
 * A joining server reports `follower` once it has synced with the leader as
 * a non-voting member; only then can a reconfig that adds it be acked.
 */
export async function waitServing(host: string, port: number, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const mode = await serverMode(host, port);
    if (mode !== undefined) return mode;
    if (Date.now() > deadline) throw new Error(`zookeeper server ${host}:${port} runs but serves no quorum after ${timeoutMs} ms (srvr reports no mode)`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface Membership {
  readonly servers: ZkServer[];
  readonly version: string;
}

/** The committed membership as a running server reports it (`conf`). */
export async function membershipOf(host: string, port: number): Promise<Membership | undefined> {
  const conf = await fourLetterWord(host, port, 'conf').catch(() => '');
  const servers = parseServerLines(conf);
  const version = parseConfigVersion(conf);
  return servers.length > 0 && version !== undefined ? { servers, version } : undefined;
}

/**
 * Runs ZooKeeper's own CLI against `host:port` as the ensemble's super user
 * and asks it to add `servers` (`reconfig -add`). Returns the committed
 * membership. The secret goes to the CLI on stdin, never on a command line.
 */
export async function reconfigAdd(cfg: ZookeeperConfig, host: string, port: number, secret: string, servers: readonly ZkServer[], timeoutMs = 30_000): Promise<Membership> {
  // No `quit` after the command: the CLI may read ahead and close the session
  // before the reconfig is committed. Stdin stays open until the answer (or
  // an error) has been printed, then its end makes the CLI exit.
  const script = [`addauth digest super:${secret}`, `reconfig -add ${servers.map(serverLine).join(',')}`, ''].join('\n');
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(cfg.java, [...jvmArgs(cfg), '-cp', classpath('cli'), 'org.apache.zookeeper.ZooKeeperMain', '-server', `${host}:${port}`], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let ended = false;
    const finish = (): void => {
      if (ended) return;
      ended = true;
      child.stdin.end();
      setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
    };
    const take = (d: Buffer): void => {
      if (out.length < 256 * 1024) out += d.toString('utf8');
      const committed = out.indexOf('Committed new configuration:');
      if ((committed >= 0 && /^version=[0-9a-f]+\s*$/m.test(out.slice(committed))) || /KeeperErrorCode|Exception/.test(out)) finish();
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(finish, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    child.stdin.on('error', () => undefined); // the CLI may exit before reading everything
    child.stdin.write(script);
  });
  const committed = output.indexOf('Committed new configuration:');
  if (committed < 0) {
    const reason = output
      .split('\n')
      .filter((l) => /KeeperErrorCode|Exception/.test(l))
      .slice(0, 3)
      .join(' | ');
    throw new Error(`zookeeper reconfig -add of server ${servers.map((s) => s.id).join(',')} through ${host}:${port} failed: ${reason || 'no answer'}`);
  }
  const tail = output.slice(committed);
  const version = parseConfigVersion(tail);
  if (version === undefined) throw new Error(`zookeeper reconfig through ${host}:${port} committed but printed no version`);
  return { servers: parseServerLines(tail), version };
}
