/**
 * Keyring files: made once with mode 0600, read back as a gossip Keyring,
 * rewritten atomically, bad content refused with a message that says how to
 * fix it, and a file others can read tightened.
 */
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureKeyringFile, generateKey, readKeyringFile, writeKeyringFile } from '../../src/keys/keyring-file';
import { main } from '../../src/cli/main';

let dir = '';
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('keyring files', () => {
  it('are made once, 0600, and read back', async () => {
    dir = await mkdtemp(join(tmpdir(), 'rz-keys-'));
    const file = join(dir, 'keyring');
    expect(await ensureKeyringFile(file)).toBe(true);
    const first = await readFile(file, 'utf8');
    expect(await ensureKeyringFile(file)).toBe(false); // never overwritten
    expect(await readFile(file, 'utf8')).toBe(first);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readKeyringFile(file)).list()).toEqual([first.trim()]);
  });

  it('are rewritten whole, primary first, and never empty', async () => {
    const file = join(dir, 'rotated');
    const [a, b] = [generateKey(), generateKey()];
    await writeKeyringFile(file, [b, a]);
    const k = await readKeyringFile(file);
    expect(k.primary()).toBe(b);
    expect(k.list()).toEqual([b, a]);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await expect(writeKeyringFile(file, [])).rejects.toMatchObject({ code: 'AGENT_ERR_KEYS' });
  });

  it('refuse bad content saying how to fix it, and tighten a readable file', async () => {
    const file = join(dir, 'bad');
    await writeFile(file, '# nothing here\n\n');
    await expect(readKeyringFile(file)).rejects.toThrow(/holds no key.*rhizome keygen/);
    await writeFile(file, 'not-base64-key\n');
    await expect(readKeyringFile(file)).rejects.toThrow(/rhizome keygen/);
    await writeFile(file, `${generateKey()}\n`);
    await chmod(file, 0o644);
    await readKeyringFile(file);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await expect(readKeyringFile(join(dir, 'missing'))).rejects.toMatchObject({ code: 'AGENT_ERR_BAD_CONFIG' });
  });

  it('rhizome keygen prints a fresh 32-byte key each time', async () => {
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => (out.push(String(chunk)), true)) as typeof process.stdout.write;
    try {
      expect(await main(['keygen'])).toBe(0);
      expect(await main(['keygen'])).toBe(0);
    } finally {
      process.stdout.write = write;
    }
    const [k1, k2] = out.map((s) => s.trim());
    expect(Buffer.from(k1!, 'base64')).toHaveLength(32);
    expect(k1).not.toBe(k2);
  });
});
