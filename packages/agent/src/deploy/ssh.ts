/**
 * Reaching machines with the system's OpenSSH client (`ssh`), never a
 * transport of our own: the operator's keys, agent, known_hosts and
 * ~/.ssh/config apply as they would to any ssh command.
 *
 * Every call to one machine shares one connection (OpenSSH connection
 * multiplexing: ControlMaster=auto with a ControlPath per destination and
 * ControlPersist), so a deploy that runs dozens of commands pays for one
 * handshake. Files travel over the same connection (`cat > tmp && mv`, so
 * a half-copied file is never seen under its real name). A unit's control
 * API, which listens on the host's loopback only, is reached through a
 * local port forward added to that connection (`ssh -O forward`).
 *
 * `RHIZOME_SSH_CONFIG` names an ssh_config file to use instead of the
 * user's (`ssh -F`): tests use it for their own keys and known hosts.
 * BatchMode is always on: a command never stops to ask for a password or
 * to confirm an unknown host key; it fails with ssh's message instead.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentError } from '../errors';

/** A parsed `user@host[:port]`. */
export interface SshTarget {
  readonly user?: string;
  readonly host: string;
  readonly port?: number;
}

const TARGET_RE = /^(?:([a-z_][a-z0-9_.-]{0,31})@)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252})(?::(\d{1,5}))?$/;

/** Parses `user@host[:port]` (IPv6 in brackets); a clear error otherwise. */
export function parseSshTarget(text: string): SshTarget {
  const m = TARGET_RE.exec(text);
  const port = m?.[3] === undefined ? undefined : Number(m[3]);
  if (!m || (port !== undefined && (port < 1 || port > 65535))) {
    throw new AgentError('AGENT_ERR_BAD_OPTIONS', `"${text}" is not an SSH destination; write user@host or user@host:port (e.g. ubuntu@10.0.0.5:22)`);
  }
  return { ...(m[1] ? { user: m[1] } : {}), host: m[2]!.replace(/^\[|\]$/g, ''), ...(port !== undefined ? { port } : {}) };
}

export function formatSshTarget(t: SshTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return `${t.user ? `${t.user}@` : ''}${host}${t.port !== undefined ? `:${t.port}` : ''}`;
}

export const DEFAULT_SSH_OPTIONS = Object.freeze({
  // Long enough to span one CLI command and the next few; short enough that no master lingers for long.
  controlPersistSeconds: 60,
  connectTimeoutSeconds: 10,
  // A machine that stops answering (link down, partition) is given up on after 3 × 5 s, so the
  // shared connection exits instead of holding every later command on a dead TCP connection.
  serverAliveIntervalSeconds: 5,
  serverAliveCountMax: 3,
  // An `ssh -O` control request to the shared connection answers locally, at once.
  controlRequestTimeoutMs: 10_000,
  // A command over ssh (copy, start, stop) that takes longer than this is stuck.
  commandTimeoutMs: 120_000,
});

export interface SshResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Single-quotes a string for a POSIX shell. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function controlDir(): string {
  // Short and private: a unix socket path must stay under ~100 bytes.
  const dir = join(tmpdir(), `rz-ssh-${process.getuid?.() ?? 'u'}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** One machine reached over OpenSSH. */
export class SshHost {
  readonly target: SshTarget;
  /** How messages name this machine, e.g. `machine 2 (root@10.0.0.5)`. */
  readonly label: string;
  private readonly forwards = new Map<number, number>();

  constructor(target: SshTarget, label?: string) {
    this.target = target;
    this.label = label ?? formatSshTarget(target);
  }

  private master: Promise<void> | undefined;

  private baseArgs(master: 'no' | 'yes' = 'no'): string[] {
    const config = process.env['RHIZOME_SSH_CONFIG'];
    return [
      ...(config ? ['-F', config] : []),
      '-o', 'BatchMode=yes',
      '-o', `ConnectTimeout=${DEFAULT_SSH_OPTIONS.connectTimeoutSeconds}`,
      '-o', `ServerAliveInterval=${DEFAULT_SSH_OPTIONS.serverAliveIntervalSeconds}`,
      '-o', `ServerAliveCountMax=${DEFAULT_SSH_OPTIONS.serverAliveCountMax}`,
      // The release is a few MB of JavaScript: it compresses about 4:1.
      '-o', 'Compression=yes',
      // Commands never become the master: a backgrounded master would keep their output pipes open.
      '-o', `ControlMaster=${master}`,
      '-o', `ControlPath=${join(controlDir(), '%C')}`,
      '-o', `ControlPersist=${DEFAULT_SSH_OPTIONS.controlPersistSeconds}`,
      ...(this.target.port !== undefined ? ['-p', String(this.target.port)] : []),
      ...(this.target.user ? ['-l', this.target.user] : []),
    ];
  }

  /**
   * Starts the shared connection unless one runs (another rhizome command's
   * counts): `ssh -M -N -f` with no pipes, so it can outlive this process.
   * If it cannot start, commands still work, each with its own connection.
   */
  private ensureMaster(): Promise<void> {
    this.master ??= (async () => {
      if ((await spawnSsh([...this.baseArgs(), '-O', 'check', '--', this.target.host])).code === 0) return;
      await spawnSsh([...this.baseArgs('yes'), '-N', '-f', '--', this.target.host], (DEFAULT_SSH_OPTIONS.connectTimeoutSeconds + 5) * 1000);
    })();
    return this.master;
  }

  /** Runs a shell command on the machine; resolves with its exit code and output (never rejects on a non-zero exit). */
  async run(command: string, opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<SshResult> {
    await this.ensureMaster();
    const timeoutMs = opts.timeoutMs ?? DEFAULT_SSH_OPTIONS.commandTimeoutMs;
    const r = await sshProcess([...this.baseArgs(), '--', this.target.host, command], timeoutMs, {
      input: opts.input ?? '',
      timeoutNote: `no answer within ${Math.round(timeoutMs / 1000)} s (the machine or its network is down?)`,
    });
    if (r.spawnError) throw new AgentError('AGENT_ERR_SSH', `cannot run ssh for ${this.label}: ${r.spawnError.message}; is OpenSSH's client installed?`, { cause: r.spawnError });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  }

  /** Runs a command that must succeed; an error names the machine, the step and ssh's or the command's message. */
  async check(command: string, what: string, opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<string> {
    const r = await this.run(command, opts);
    if (r.code !== 0) {
      const detail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-5).join(' | ');
      const hint = r.code === 255 ? ' (ssh could not connect: check the address, the key and known_hosts, e.g. with `ssh ' + formatSshTarget(this.target) + ' true`)' : '';
      throw new AgentError('AGENT_ERR_SSH', `${this.label}: ${what} failed (exit ${r.code}): ${detail || 'no output'}${hint}`);
    }
    return r.stdout;
  }

  /** Writes `content` to `path` on the machine atomically (temp file + rename), with `mode`. */
  async writeFile(path: string, content: string | Buffer, mode = 0o600): Promise<void> {
    const tmp = `${path}.${process.pid}.tmp`;
    const dir = path.slice(0, path.lastIndexOf('/')) || '/';
    await this.check(`umask 077 && mkdir -p ${shellQuote(dir)} && cat > ${shellQuote(tmp)} && chmod ${mode.toString(8)} ${shellQuote(tmp)} && mv -f ${shellQuote(tmp)} ${shellQuote(path)}`, `writing ${path}`, { input: content });
  }

  /** A local port forwarded to `remotePort` on the machine's loopback, over the shared connection. */
  async forward(remotePort: number): Promise<number> {
    const known = this.forwards.get(remotePort);
    if (known !== undefined && (await this.masterAlive())) return known;
    this.master = undefined;
    await this.check('true', 'connecting');
    const local = await freeLocalPort();
    const r = await spawnSsh([...this.baseArgs(), '-O', 'forward', '-L', `127.0.0.1:${local}:127.0.0.1:${remotePort}`, '--', this.target.host]);
    if (r.code !== 0) throw new AgentError('AGENT_ERR_SSH', `${this.label}: could not forward a local port to its port ${remotePort}: ${r.stderr.trim()}`);
    this.forwards.set(remotePort, local);
    return local;
  }

  private async masterAlive(): Promise<boolean> {
    return (await spawnSsh([...this.baseArgs(), '-O', 'check', '--', this.target.host])).code === 0;
  }

  /** Ends the shared connection (and its forwards). */
  async close(): Promise<void> {
    this.forwards.clear();
    this.master = undefined;
    await spawnSsh([...this.baseArgs(), '-O', 'exit', '--', this.target.host]);
  }
}

/** An ssh that does not run a remote command (`-O` requests, starting the shared connection): bounded too. */
async function spawnSsh(args: string[], timeoutMs: number = DEFAULT_SSH_OPTIONS.controlRequestTimeoutMs): Promise<{ code: number; stderr: string }> {
  const r = await sshProcess(args, timeoutMs, { timeoutNote: `no answer within ${Math.round(timeoutMs / 1000)} s` });
  return r.spawnError ? { code: 127, stderr: r.spawnError.message } : { code: r.code, stderr: r.stderr };
}

/** How one ssh process ended. */
interface SshExit {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** ssh could not be started at all (not installed?). */
  readonly spawnError?: Error;
}

/** Stderr kept per ssh process: a runaway remote command cannot fill our memory. */
const MAX_STDERR_BYTES = 64 * 1024;

/**
 * Runs `ssh ARGS` and settles once: when it exits, when it cannot be
 * started, or after `timeoutMs`: then it is SIGKILLed and reads as exit 255
 * with `timeoutNote` at the end of its stderr. Settled on the timeout
 * itself, not on 'close': a multiplexed client hands its stdio to the
 * shared connection, which keeps our pipes open for as long as it hangs on
 * a machine that stopped answering. With `input`, stdin is a pipe fed with
 * it and stdout is collected; without, both are closed.
 */
function sshProcess(args: string[], timeoutMs: number, opts: { input?: string | Buffer; timeoutNote: string }): Promise<SshExit> {
  return new Promise((resolve) => {
    const withInput = opts.input !== undefined;
    const child = spawn('ssh', args, { stdio: withInput ? ['pipe', 'pipe', 'pipe'] : ['ignore', 'ignore', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let errBytes = 0;
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => {
      if (errBytes >= MAX_STDERR_BYTES) return;
      err.push(b);
      errBytes += b.length;
    });
    const text = (bs: Buffer[]): string => Buffer.concat(bs).toString('utf8');
    let settled = false;
    const settle = (r: SshExit): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      child.stdout?.destroy();
      child.stderr?.destroy();
      settle({ code: 255, stdout: text(out), stderr: `${text(err)}${opts.timeoutNote}` });
    }, timeoutMs);
    child.on('error', (e) => settle({ code: 127, stdout: '', stderr: e.message, spawnError: e }));
    child.on('close', (code, signal) => settle({ code: code ?? (signal ? 255 : 1), stdout: text(out), stderr: text(err) }));
    if (child.stdin) {
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input);
    }
  });
}

async function freeLocalPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
