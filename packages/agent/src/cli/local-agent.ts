/**
 * The local agent: the agent on this host that the CLI talks to when no
 * deployment is recorded here (a host that only runs agents, e.g. one that
 * `rhizome deploy` reached over SSH, or one started by hand). Found, in order:
 *   1. `$RHIZOME_DATA_DIR` (also the default `--data-dir` of `rhizome agent`);
 *   2. a data directory under the home (`--home`, `$RHIZOME_HOME`,
 *      `./.rhizome`), directly (`<home>/<dir>/control.json`) or one level down
 *      (`<home>/<deployment>/<unit>/control.json`), whose agent is alive.
 * That agent then answers for the whole mesh (mesh/remote-control.ts).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readControlEndpoint } from '../control/endpoint';
import { isAlive } from '../deploy/deployment';

export const DATA_DIR_ENV = 'RHIZOME_DATA_DIR';

async function liveAgentIn(dir: string): Promise<boolean> {
  try {
    const endpoint = await readControlEndpoint(dir);
    return isAlive(endpoint.pid);
  } catch {
    return false;
  }
}

async function subdirs(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => join(dir, e.name)).sort();
  } catch {
    return [];
  }
}

/** The data directory of a live local agent, or undefined. Bounded: two directory levels under the home. */
export async function findLocalAgent(home: string): Promise<string | undefined> {
  const fromEnv = process.env[DATA_DIR_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  for (const dir of await subdirs(home)) {
    if (await liveAgentIn(dir)) return dir;
    for (const sub of await subdirs(dir)) if (await liveAgentIn(sub)) return sub;
  }
  return undefined;
}
