/**
 * Keyring files: base64 AES-256 keys, one per line, the first the primary
 * (Serf's keyring file, one key per line instead of a JSON array). Lines
 * starting with `#` are comments. The file is a secret: written 0600,
 * atomically (tmp + fsync + rename), and a readable-by-others file is
 * tightened rather than trusted silently.
 *
 * A deployment's keyring is `<deployment dir>/keyring`, made by `deploy`;
 * every agent of the deployment reads that file, and each agent rewrites its
 * own keyring file when `rhizome keys` changes the keys at run time.
 */
import { chmod, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { Keyring, type GossipNode } from '@rhizome/gossip';
import { AgentError } from '../errors';
import type { Logger } from '../log/logger';

/** A deployment's keyring file name, in its deployment directory. */
export const KEYRING_FILE = 'keyring';

/** A new random key, base64 (what `rhizome keygen` prints). */
export function generateKey(): string {
  return Keyring.generateKey();
}

/** The keys in a keyring file's text (primary first); throws on none. */
export function parseKeyringText(text: string, file: string): string[] {
  const keys = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (keys.length === 0) throw new AgentError('AGENT_ERR_BAD_CONFIG', `keyring file ${file} holds no key; put one base64 key (32 bytes) per line, e.g. from 'rhizome keygen'`);
  return keys;
}

/** Reads a keyring file into a gossip Keyring. */
export async function readKeyringFile(file: string): Promise<Keyring> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new AgentError('AGENT_ERR_BAD_CONFIG', `cannot read keyring file ${file}: ${(err as Error).message}`, { cause: err });
  }
  // A key others can read is no secret: tighten it rather than refuse.
  try {
    if (((await stat(file)).mode & 0o077) !== 0) await chmod(file, 0o600);
  } catch {
    // read-only mount: reading it was enough
  }
  const keys = parseKeyringText(text, file);
  try {
    return new Keyring(keys[0]!, ...keys.slice(1));
  } catch (err) {
    throw new AgentError('AGENT_ERR_BAD_CONFIG', `keyring file ${file}: ${(err as Error).message}; each line must be a base64 32-byte key ('rhizome keygen' prints one)`, { cause: err });
  }
}

/** Writes keys (primary first) to `file`, mode 0600, atomically and durably. */
export async function writeKeyringFile(file: string, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) throw new AgentError('AGENT_ERR_KEYS', `refusing to write an empty keyring to ${file}`);
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(`${keys.join('\n')}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** Creates `file` with one new key unless it exists; returns whether it made one. */
export async function ensureKeyringFile(file: string): Promise<boolean> {
  try {
    const fh = await open(file, 'wx', 0o600);
    try {
      await fh.writeFile(`${generateKey()}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  }
}

/**
 * Rewrites `file` whenever `rhizome keys` changes the node's keyring, so a
 * restart keeps the keys the cluster uses. Writes go one after another (key
 * operations may arrive back to back); a failed write is logged, the keys
 * stay in effect in memory. Returns the unsubscribe.
 */
export function persistKeyringChanges(node: GossipNode, file: string, log: Logger): () => void {
  let writes: Promise<void> = Promise.resolve();
  return node.on('keyring-change', (change) => {
    writes = writes
      .then(() => writeKeyringFile(file, change.keys))
      .then(
        () => log.info({ operation: change.operation, keys: change.keys.length, file }, `keyring ${change.operation}: ${file} rewritten`),
        (err: unknown) => log.error({ err, file }, `keyring ${change.operation} applied in memory but ${file} could not be written; a restart would lose it`),
      );
  });
}
