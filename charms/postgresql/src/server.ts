/**
 * The unit's PostgreSQL server: where its cluster lives, how it is created
 * (initdb for the primary, pg_basebackup for a replica), started, stopped
 * and asked about replication.
 *
 * PostgreSQL refuses to run as root. When the agent is root, the server
 * runs as the `run-as` user (Debian's `postgres`) with its cluster under
 * `data-root` (a folder that user owns, as Debian keeps its own clusters
 * under /var/lib/postgresql), since a unit's own directory is private to
 * the agent (0700) and not reachable by another user. The unit's dir holds
 * a `pg` link to it. An agent that is not root runs the server as itself,
 * under the unit's dir.
 *
 * Passwords never appear on a command line or in a log: SQL goes to psql
 * on stdin and pg_basebackup reads PGPASSWORD from its environment.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, appendFile, chown, mkdir, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { WorkloadPidFile } from '@rhizome/agent';
import type { PostgresqlConfig } from './config';

/** Who the server runs as: another user (agent is root) or the agent's own user. */
export interface ServerUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

export interface PgPaths {
  readonly root: string;
  readonly data: string;
  /** Unix socket directory (private to the server's user). */
  readonly run: string;
  readonly log: string;
  /** The settings the charm owns, included from postgresql.conf. */
  readonly conf: string;
  readonly pid: string;
}

export class PostgresqlMissingError extends Error {
  readonly code = 'PG_ERR_MISSING';
  constructor(detail: string) {
    super(`PostgreSQL's server is not installed (${detail}); install Debian's package with 'scripts/ensure-apt.sh postgresql' (the charm runs its own server per unit on high ports, never the system cluster)`);
    this.name = 'PostgresqlMissingError';
  }
}

/** The highest installed major version's bin dir (/usr/lib/postgresql/N/bin). */
export async function findBinDir(): Promise<string> {
  const versions = (await readdir('/usr/lib/postgresql').catch(() => [] as string[])).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = join('/usr/lib/postgresql', v, 'bin');
    if (await exists(join(bin, 'postgres'))) return bin;
  }
  throw new PostgresqlMissingError('no /usr/lib/postgresql/N/bin/postgres');
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The user the server runs as, or undefined for the agent's own user. */
export async function serverUser(cfg: PostgresqlConfig): Promise<ServerUser | undefined> {
  if (!runsAsOtherUser()) return undefined;
  const passwd = await readFile('/etc/passwd', 'utf8');
  const line = passwd.split('\n').find((l) => l.startsWith(`${cfg.runAs}:`));
  const f = line?.split(':');
  if (!f || f.length < 4) throw new Error(`postgresql: the user "${cfg.runAs}" (option run-as) does not exist; Debian's postgresql package creates "postgres"`);
  return { name: cfg.runAs, uid: Number(f[2]), gid: Number(f[3]) };
}

/** Whether the server runs as another user (the agent is root). */
export const runsAsOtherUser = (): boolean => process.getuid?.() === 0;

/** Where the unit's cluster lives (see the file comment); a pure function of the unit, as `workloads` needs. */
export function pgPaths(unitDir: string, cfg: PostgresqlConfig, asOtherUser = runsAsOtherUser()): PgPaths {
  // Unique per unit dir, readable: <unit label>-<hash of the unit's dir>.
  const root = !asOtherUser ? join(unitDir, 'pg') : join(cfg.dataRoot, `${basename(dirname(unitDir))}-${createHash('sha256').update(unitDir).digest('hex').slice(0, 12)}`);
  const data = join(root, 'data');
  return { root, data, run: join(root, 'run'), log: join(root, 'postgres.log'), conf: join(data, 'rhizome.conf'), pid: join(data, 'postmaster.pid') };
}

/** The postmaster as a workload: its pid file's first line, its command line names this cluster's data dir. */
export function postgresWorkload(paths: PgPaths): WorkloadPidFile {
  // Its cluster lives outside the unit's dir when it runs as postgres: removed with the unit for good.
  return { name: 'postgres', pidFile: paths.pid, cmdline: ['postgres', `-D ${paths.data}`], dataDir: paths.root };
}

interface RunOptions {
  readonly user?: ServerUser | undefined;
  readonly env?: Readonly<Record<string, string>>;
  readonly input?: string;
  readonly timeoutMs?: number;
}

/** Runs a program (as the server's user when given), resolves with stdout; a failure carries stderr's end. */
export function run(program: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C.UTF-8', ...(opts.user ? { HOME: '/var/lib/postgresql', USER: opts.user.name } : { HOME: process.env['HOME'] ?? '/' }), ...opts.env },
      ...(opts.user ? { uid: opts.user.uid, gid: opts.user.gid } : {}),
      cwd: '/',
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      if (out.length < 1 << 20) out += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      if (err.length < 1 << 16) err += d.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(e.code === 'ENOENT' ? new PostgresqlMissingError(`${program} not found`) : e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${basename(program)} ${args[0] ?? ''} failed (${signal ?? `exit ${code}`}): ${err.trim().split('\n').slice(-5).join(' | ')}`));
    });
    // A program that exits without reading stdin (pg_ctl status) closes the pipe: not an error.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Creates the cluster's folders, owned by the server's user, private to it; links them from the unit's dir. */
async function prepareRoot(unitDir: string, paths: PgPaths, user: ServerUser | undefined): Promise<void> {
  for (const dir of [dirname(paths.root), paths.root, paths.run]) {
    if (dir === dirname(paths.root) && user === undefined) continue;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (user) await chown(dir, user.uid, user.gid);
  }
  if (user) {
    const link = join(unitDir, 'pg');
    if ((await readlink(link).catch(() => undefined)) !== paths.root) {
      await rm(link, { force: true, recursive: true });
      await symlink(paths.root, link);
    }
  }
}

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** The settings the charm owns (included from postgresql.conf; rewritten before every start, so a replica gets its own). */
async function writeSettings(paths: PgPaths, me: Endpoint, user: ServerUser | undefined): Promise<void> {
  const text = [
    '# Written by the rhizome postgresql charm before every start.',
    `port = ${me.port}`,
    `listen_addresses = '${me.host}'`,
    `unix_socket_directories = '${paths.run}'`,
    'wal_level = replica',
    'max_wal_senders = 10',
    'max_replication_slots = 10',
    'hot_standby = on',
    "password_encryption = 'scram-sha-256'",
    // Statements are never logged: they may carry passwords.
    "log_statement = 'none'",
    '',
  ].join('\n');
  await writeFile(paths.conf, text, { mode: 0o600 });
  if (user) await chown(paths.conf, user.uid, user.gid);
}

export async function isInitialized(paths: PgPaths): Promise<boolean> {
  return exists(join(paths.data, 'PG_VERSION'));
}

/** initdb for a new primary: local connections over the private socket, password (SCRAM) over TCP, replication allowed. */
export async function initPrimary(unitDir: string, paths: PgPaths, user: ServerUser | undefined): Promise<void> {
  if (await isInitialized(paths)) return;
  await prepareRoot(unitDir, paths, user);
  const bin = await findBinDir();
  await rm(paths.data, { recursive: true, force: true });
  await run(join(bin, 'initdb'), ['-D', paths.data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-instructions'], { user });
  await appendFile(join(paths.data, 'pg_hba.conf'), ['', '# rhizome: replicas and clients from any address, with a password', 'host replication replicator 0.0.0.0/0 scram-sha-256', 'host all all 0.0.0.0/0 scram-sha-256', ''].join('\n'));
  await appendFile(join(paths.data, 'postgresql.conf'), "\ninclude_if_exists = 'rhizome.conf'\n");
}

/** A replica's cluster: a base backup of the primary that follows it (`-R` writes standby.signal and primary_conninfo). */
export async function initReplica(unitDir: string, paths: PgPaths, user: ServerUser | undefined, primary: Endpoint, replicationPassword: string): Promise<void> {
  if (await isInitialized(paths)) return;
  await prepareRoot(unitDir, paths, user);
  const bin = await findBinDir();
  await rm(paths.data, { recursive: true, force: true });
  await run(join(bin, 'pg_basebackup'), ['-h', primary.host, '-p', String(primary.port), '-U', 'replicator', '-D', paths.data, '-R', '-X', 'stream', '-c', 'fast', '--no-password'], {
    user,
    env: { PGPASSWORD: replicationPassword },
    timeoutMs: 300_000,
  });
}

export async function isRunning(paths: PgPaths, user: ServerUser | undefined): Promise<boolean> {
  const bin = await findBinDir();
  return run(join(bin, 'pg_ctl'), ['status', '-D', paths.data], { user }).then(
    () => true,
    () => false,
  );
}

/**
 * Whether the pid file names a live postmaster of this cluster. A SIGKILLed
 * postmaster leaves its pid file, and its pid may linger as a zombie (which
 * `kill -0`, and so `pg_ctl status` and PostgreSQL's own lock check, take for
 * alive): only a running process whose command line names this data dir counts.
 */
async function postmasterState(paths: PgPaths): Promise<'running' | 'stale' | 'none'> {
  const text = await readFile(paths.pid, 'utf8').catch(() => undefined);
  if (text === undefined) return 'none';
  const pid = Number(text.split('\n')[0]);
  const stat = Number.isInteger(pid) && pid > 0 ? await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '') : '';
  if (stat === '' || /^\d+ \(.*\) [ZX] /.test(stat)) return 'stale';
  const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
  return cmdline.includes(paths.data) ? 'running' : 'stale';
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts the server and waits until it accepts connections; when it already runs, only waits. */
export async function startServer(paths: PgPaths, me: Endpoint, user: ServerUser | undefined, timeoutMs = 60_000): Promise<void> {
  await writeSettings(paths, me, user);
  const bin = await findBinDir();
  const deadline = Date.now() + timeoutMs;
  const state = await postmasterState(paths);
  if (state === 'stale') await rm(paths.pid, { force: true });
  if (state !== 'running') {
    // Backends of a killed postmaster hold its shared memory until they notice and exit:
    // PostgreSQL refuses to start until then, so a refused start is retried (bounded).
    for (;;) {
      try {
        await run(join(bin, 'pg_ctl'), ['start', '-D', paths.data, '-l', paths.log, '-w', '-t', '60', '-s'], { user, timeoutMs: 90_000 });
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(1_000);
      }
    }
  }
  // A postmaster that runs may still be starting up or recovering: wait until it accepts connections.
  for (;;) {
    const ready = await run(join(bin, 'pg_isready'), ['-q', '-h', paths.run, '-p', String(me.port)]).then(
      () => true,
      () => false,
    );
    if (ready) return;
    if (Date.now() > deadline) throw new Error(`postgresql on port ${me.port} does not accept connections after ${timeoutMs} ms (see ${paths.log})`);
    await sleep(250);
  }
}

export async function stopServer(paths: PgPaths, user: ServerUser | undefined): Promise<void> {
  if (!(await isInitialized(paths)) || !(await isRunning(paths, user))) return;
  const bin = await findBinDir();
  await run(join(bin, 'pg_ctl'), ['stop', '-D', paths.data, '-m', 'fast', '-w', '-t', '30', '-s'], { user, timeoutMs: 60_000 }).catch(() => undefined);
}

/** Runs SQL through the private socket as the superuser; returns unaligned, tuples-only output. */
export async function sql(paths: PgPaths, port: number, text: string, database = 'postgres'): Promise<string> {
  const bin = await findBinDir();
  // Root may use the private socket dir; the superuser authenticates by trust there, nobody else reaches it.
  return (await run(join(bin, 'psql'), ['-h', paths.run, '-p', String(port), '-U', 'postgres', '-d', database, '-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1'], { input: text })).trim();
}

/** SQL string literal. */
export const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`;
/** SQL identifier (the options allow only [a-z0-9_], quoted all the same). */
export const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;

/** Creates (or re-keys) the replication and application roles and the application database; safe to repeat. */
export async function provision(paths: PgPaths, port: number, creds: { database: string; user: string; password: string; replicationPassword: string }): Promise<void> {
  const role = (name: string, attrs: string, password: string): string =>
    `SELECT format('CREATE ROLE %I', ${literal(name)}) WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${literal(name)}) \\gexec\nALTER ROLE ${ident(name)} WITH ${attrs} PASSWORD ${literal(password)};`;
  await sql(
    paths,
    port,
    [
      role('replicator', 'REPLICATION LOGIN', creds.replicationPassword),
      role(creds.user, 'LOGIN', creds.password),
      `SELECT format('CREATE DATABASE %I OWNER %I', ${literal(creds.database)}, ${literal(creds.user)}) WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = ${literal(creds.database)}) \\gexec`,
      '',
    ].join('\n'),
  );
}

/** Replicas streaming from this primary. */
export async function streamingReplicas(paths: PgPaths, port: number): Promise<number> {
  return Number(await sql(paths, port, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming';"));
}

/** A replica's state: whether it receives WAL, and how many bytes it has received but not yet replayed. */
export async function replicaState(paths: PgPaths, port: number): Promise<{ streaming: boolean; lagBytes: number }> {
  const row = await sql(paths, port, "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none'), coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0);");
  const [status, lag] = row.split('|');
  return { streaming: status === 'streaming', lagBytes: Number(lag) || 0 };
}
