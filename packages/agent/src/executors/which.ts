/**
 * Finds an executable the way a shell would: an absolute or relative path is
 * checked as is, a bare name is looked up in each directory of PATH.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join, resolve } from 'node:path';

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The full path of `command`, or `undefined` if it is not an executable file on PATH. */
export async function which(command: string, pathEnv: string | undefined = process.env['PATH']): Promise<string | undefined> {
  if (command.includes('/')) {
    const full = resolve(command);
    return (await isExecutable(full)) ? full : undefined;
  }
  for (const dir of (pathEnv ?? '').split(delimiter)) {
    if (dir === '') continue;
    const full = join(dir, command);
    if (await isExecutable(full)) return full;
  }
  return undefined;
}
