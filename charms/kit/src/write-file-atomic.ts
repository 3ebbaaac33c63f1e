/**
 * Workload files are written the way a careful daemon expects them: the new
 * content goes to a temporary file next to the target, is fsynced, and is
 * renamed over the target, so a reader (or a crash) sees the old file or the
 * new one, never half of one. A file whose content would not change is not
 * touched at all (its mtime stays put, so file watchers and reloads do not
 * fire for nothing).
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `content` to `path` atomically (tmp + fsync + rename) unless the file
 * already holds exactly that content. Resolves with whether it wrote.
 *
 * @example
 * if (await writeFileAtomic(join(unit.dir, 'workers'), 'datanode-0\n')) ctx.note('workers changed');
 */
export async function writeFileAtomic(path: string, content: string, mode = 0o644): Promise<boolean> {
  const current = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (current === content) return false;
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(content, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return true;
}
