/**
 * An exclusive lock on a data directory: the file `LOCK` holding the owner's
 * pid. Two agents writing one log would interleave frames and corrupt it, so
 * the second one to open a directory is refused.
 *
 * The lock file is created atomically with its content (write a private temp
 * file, then `link` it to `LOCK`, which fails if `LOCK` exists). A lock whose
 * pid is no longer alive was left by a process that crashed (SIGKILL, power
 * loss) and is taken over; a lock held by a live pid, including this process,
 * is refused with `AGENT_ERR_STORE_LOCKED`.
 */
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from '../errors';

export const LOCK_FILE = 'LOCK';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readOwner(path: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readFile(path, 'utf8')).trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export interface DirLock {
  readonly path: string;
  release(): Promise<void>;
}

/** Takes the lock of `dir`, or throws `AGENT_ERR_STORE_LOCKED` if a live process holds it. */
export async function acquireDirLock(dir: string): Promise<DirLock> {
  const path = join(dir, LOCK_FILE);
  const tmp = join(dir, `${LOCK_FILE}.${process.pid}.tmp`);
  await writeFile(tmp, `${process.pid}\n`, { mode: 0o644 });
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await link(tmp, path);
        return {
          path,
          release: async () => {
            if ((await readOwner(path)) === process.pid) await unlink(path).catch(() => undefined);
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
      `data directory ${dir} is in use by process ${owner ?? '?'} (lock file ${path}). ` +
        `Stop that agent first, or give this one its own --data-dir.`,
    );
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}
