/**
 * An exclusive lock on a data directory: the file `LOCK` holding the owner's
 * pid. Two agents writing one log would interleave frames and corrupt it, so
 * the second one to open a directory is refused.
 *
 * The lock file is created atomically with its content (write a private temp
 * file, then `link` it to `LOCK`, which fails if `LOCK` exists). It holds
 * "<pid> <start time>" (the process start time from /proc, where there is
 * one). A lock whose process is gone was left by a crash (SIGKILL, power
 * loss) and is taken over. "Gone" includes a live pid with another start
 * time: after a container restart the agent is often pid 1 again, and its
 * own old lock must not lock it out. A lock of a live process, including this
 * one (a second open in the same process), is refused with
 * `AGENT_ERR_STORE_LOCKED`.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from '../errors';

export const LOCK_FILE = 'LOCK';

/** Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), if known. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: skip past the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

interface Owner {
  pid: number;
  start: string | undefined;
}

function isAlive(owner: Owner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (owner.start === undefined) return true;
  const start = processStartTime(owner.pid);
  return start === undefined || start === owner.start;
}

async function readOwner(path: string): Promise<Owner | undefined> {
  try {
    const [pidText, start] = (await readFile(path, 'utf8')).trim().split(/\s+/);
    const pid = Number.parseInt(pidText ?? '', 10);
    return Number.isSafeInteger(pid) && pid > 0 ? { pid, start } : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export interface DirLock {
  readonly path: string;
  release(): Promise<void>;
}

/**
 * Takes the lock of `dir`, or throws `AGENT_ERR_STORE_LOCKED` if a live process holds it.
 * `file` names the lock file (default `LOCK`): a folder may hold several independent locks.
 */
export async function acquireDirLock(dir: string, file: string = LOCK_FILE): Promise<DirLock> {
  const path = join(dir, file);
  const tmp = join(dir, `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const me: Owner = { pid: process.pid, start: processStartTime(process.pid) };
  await writeFile(tmp, `${me.pid}${me.start === undefined ? '' : ` ${me.start}`}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await link(tmp, path);
        return {
          path,
          release: async () => {
            const owner = await readOwner(path);
            if (owner?.pid === me.pid && owner.start === me.start) await unlink(path).catch(() => undefined);
          },
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const owner = await readOwner(path);
      if (owner !== undefined && isAlive(owner)) break;
      // Stale: the owner crashed. Remove its lock and try once more.
      await unlink(path).catch(() => undefined);
    }
    const owner = await readOwner(path);
    throw new AgentError(
      'AGENT_ERR_STORE_LOCKED',
      `data directory ${dir} is in use by process ${owner?.pid ?? '?'} (lock file ${path}). ` +
        `Stop that agent first, or give this one its own --data-dir.`,
    );
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}
