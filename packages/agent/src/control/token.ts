/**
 * The control API's bearer token: 32 random bytes, hex, in
 * `<dataDir>/control.token` (mode 0600, so only the agent's user can read it
 * and therefore talk to the agent). Created on first start, reused after.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from '../errors';
import { TOKEN_FILE } from './token-file';

export { readToken, TOKEN_FILE } from './token-file';

const TOKEN_RE = /^[0-9a-f]{64}$/;

/** Reads the token in `dataDir`, creating it (mode 0600) if there is none. */
export async function loadOrCreateToken(dataDir: string): Promise<string> {
  const path = join(dataDir, TOKEN_FILE);
  await mkdir(dataDir, { recursive: true });
  const fresh = randomBytes(32).toString('hex');
  try {
    await writeFile(path, `${fresh}\n`, { mode: 0o600, flag: 'wx' });
    return fresh;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const token = (await readFile(path, 'utf8')).trim();
  if (!TOKEN_RE.test(token)) {
    throw new AgentError(
      'AGENT_ERR_BAD_OPTIONS',
      `${path} does not hold a control token (64 hex characters). Delete the file and restart the agent to make a new one.`,
    );
  }
  // A token others can read is no secret: tighten it rather than refuse.
  if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600);
  return token;
}

/** Compares two tokens in time independent of where they differ (and of their lengths). */
export function tokensEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}
