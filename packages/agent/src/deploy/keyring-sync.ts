/**
 * The deployment's keyring (`<deployment dir>/keyring`) is what deploy,
 * add-unit and start copy to a machine before an agent starts there. The
 * live agents rewrite their own keyring files when `rhizome keys` rotates
 * the key, but the deployment's copy is only read: after a rotation it
 * still held the removed key, so a unit added later could not join, and
 * copying it to a machine overwrote the rotated keyring its other units
 * were using (they came back from a restart with the removed key).
 *
 * So before a keyring is copied (and after `rhizome keys` changed one), the
 * live cluster is asked what it uses (`keys list`, through any live unit):
 * when every member answered and all use one primary, the file becomes that
 * primary then the other keys every member holds. Mid-rotation (members on
 * different primaries), or with no live unit, the file is left as it is.
 */
import type { KeyResponse } from '@rhizome/gossip';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KEYRING_FILE, writeKeyringFile } from '../keys/keyring-file';
import { clientFor, deploymentDir, liveUnits, type Deployment } from './deployment';

/** The deployment's keyring: `<deployment dir>/keyring` (0600), shared by its local agents, copied to its machines. */
export function deploymentKeyringFile(d: Pick<Deployment, 'home' | 'name'>): string {
  return join(deploymentDir(d.home, d.name), KEYRING_FILE);
}

/** Live units asked at most before giving up (each may be unreachable). */
const MAX_ASKED = 3;

/** The keyring the live cluster agrees on (primary first), or undefined when it does not agree or cannot be asked. */
export async function clusterKeyring(d: Deployment, timeoutMs = 5_000): Promise<string[] | undefined> {
  for (const u of liveUnits(d).slice(0, MAX_ASKED)) {
    let r: KeyResponse;
    try {
      r = await (await clientFor(u, timeoutMs)).post<KeyResponse>('/keys', { operation: 'list' });
    } catch {
      continue;
    }
    if (!r.ok) return undefined;
    const primaries = Object.entries(r.primaryKeys).filter(([, n]) => n > 0);
    if (primaries.length !== 1 || primaries[0]![1] !== r.members) return undefined;
    const primary = primaries[0]![0];
    const rest = Object.entries(r.keys)
      .filter(([k, n]) => k !== primary && n === r.members)
      .map(([k]) => k)
      .sort();
    return [primary, ...rest];
  }
  return undefined;
}

/** Rewrites `file` with the cluster's keyring when it differs; returns whether it did. */
export async function syncDeploymentKeyring(d: Deployment, file: string): Promise<boolean> {
  const keys = await clusterKeyring(d);
  if (keys === undefined) return false;
  const text = `${keys.join('\n')}\n`;
  if ((await readFile(file, 'utf8').catch(() => '')) === text) return false;
  await writeKeyringFile(file, keys);
  return true;
}
