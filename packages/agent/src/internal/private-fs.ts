/**
 * Files only the agent's user may read: data directories 0700, files 0600.
 * They hold relation data (passwords), charm options, the control token and
 * log lines. Modes are applied where things are created *and* re-applied to
 * what already exists (a data dir created by an older version, or by hand).
 */
import { chmod, mkdir } from 'node:fs/promises';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** Creates `dir` (and missing parents) 0700, and makes it 0700 if it existed. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  await chmod(dir, PRIVATE_DIR_MODE);
}

/** Makes an existing file 0600; a missing one is fine (it will be created 0600). */
export async function tightenFile(path: string): Promise<void> {
  await chmod(path, PRIVATE_FILE_MODE).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}
