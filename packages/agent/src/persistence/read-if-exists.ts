/**
 * Reading a file that may not exist yet (a first start, a unit without
 * workloads): absent is `undefined`; any other failure (permissions, I/O)
 * still throws, so it is never mistaken for "nothing there".
 */
import { readFile } from 'node:fs/promises';

export async function readIfExists(path: string): Promise<Buffer | undefined>;
export async function readIfExists(path: string, encoding: 'utf8'): Promise<string | undefined>;
export async function readIfExists(path: string, encoding?: 'utf8'): Promise<Buffer | string | undefined> {
  try {
    return await (encoding ? readFile(path, encoding) : readFile(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
