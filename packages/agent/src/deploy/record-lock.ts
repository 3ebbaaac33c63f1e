/**
 * Exclusive locks for the CLI's read-modify-write of a deployment.
 *
 * Several `rhizome` processes may act on one deployment at once (two
 * `add-unit`, a burst of `kill`/`start`). Two kinds of lock keep them from
 * losing each other's updates:
 *   - the record lock (`<deployment dir>/deployment.lock`) is held only while
 *     `deployment.json` is read, changed and written back: short, so the
 *     deployment never stalls behind a unit that takes a minute to start;
 *   - a unit lock (`<deployment dir>/<unit>.lock`) is held for a whole
 *     operation on one unit (start, kill, stop, remove), so two operations on
 *     the same unit run one after the other and the record ends up saying
 *     what the last one did.
 * Both are lock files created atomically with their owner's pid and start
 * time (persistence/dir-lock.ts): a lock left by a crashed CLI is taken over,
 * never waited on forever. Waiting for a live holder is bounded.
 */
import { mkdir } from 'node:fs/promises';
import { AgentError } from '../errors';
import { acquireDirLock, type DirLock } from '../persistence/dir-lock';

export const RECORD_LOCK_FILE = 'deployment.lock';

export const DEFAULT_LOCK_WAIT = Object.freeze({
  // A record update takes milliseconds; even a queue of 50 CLI calls clears in seconds.
  recordMs: 30_000,
  // A unit operation may start an agent (up to a minute) or stop one (20 s, then SIGKILL).
  unitMs: 150_000,
});

/** Runs `fn` holding the lock file `file` in `dir`, waiting (bounded) while a live process holds it. */
export async function withLockFile<T>(dir: string, file: string, what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  // Lock files live in the deployment's directory, private to its user (0700) when created here first.
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const deadline = Date.now() + timeoutMs;
  let lock: DirLock | undefined;
  let delay = 5;
  while (!lock) {
    try {
      lock = await acquireDirLock(dir, file);
    } catch (err) {
      if ((err as AgentError).code !== 'AGENT_ERR_STORE_LOCKED') throw err;
      if (Date.now() > deadline) {
        throw new AgentError('AGENT_ERR_LOCK_TIMEOUT', `${what} is locked by another rhizome command for more than ${Math.round(timeoutMs / 1000)} s (${(err as Error).message}); wait for it to finish, or end that process`, { cause: err });
      }
      // Jittered backoff: a burst of waiters does not retry in lockstep.
      await new Promise((r) => setTimeout(r, delay + Math.random() * delay));
      delay = Math.min(delay * 2, 100);
    }
  }
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/** Lock file name of one unit's operations. */
export function unitLockFile(unit: string): string {
  return `${unit.replace(/\//g, '-')}.lock`;
}
