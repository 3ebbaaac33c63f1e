/**
 * Running `ip`, `iptables` and friends for the host harness: one place that
 * turns a failed command into an error naming the command and its stderr
 * (so a failing multi-host test says which namespace step broke).
 */
import { execFile, execFileSync } from 'node:child_process';

export class HostsError extends Error {
  override readonly name = 'HostsError';
  constructor(
    readonly code: 'HOSTS_ERR_COMMAND' | 'HOSTS_ERR_BAD_OPTION' | 'HOSTS_ERR_UNAVAILABLE',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

/** Bounded so a wedged command (a stuck `ip netns exec`) cannot hang a test. */
const COMMAND_TIMEOUT_MS = 30_000;

/** Runs a command; resolves with its output and exit code (never rejects on a non-zero exit). */
export function runCommand(cmd: string, args: readonly string[], options: { timeoutMs?: number; input?: string } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      [...args],
      { timeout: options.timeoutMs ?? COMMAND_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
          reject(new HostsError('HOSTS_ERR_COMMAND', `${cmd} ${args.join(' ')}: ${err.message}`, { cause: err }));
          return;
        }
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ stdout, stderr, code: typeof code === 'number' ? code : 1 });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Runs a command and rejects, with its stderr, unless it exits 0. */
export async function mustRun(cmd: string, args: readonly string[], options: { timeoutMs?: number; input?: string } = {}): Promise<string> {
  const r = await runCommand(cmd, args, options);
  if (r.code !== 0) {
    throw new HostsError('HOSTS_ERR_COMMAND', `\`${cmd} ${args.join(' ')}\` exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}

/** Synchronous variant for exit handlers (no event loop left there); ignores failures. */
export function runSyncQuietly(cmd: string, args: readonly string[]): string {
  try {
    return execFileSync(cmd, [...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
  } catch {
    return '';
  }
}
