import { describe, it, expect } from 'vitest';
import { randomBytes } from 'node:crypto';
import { KEY_SIZE, Keyring, KeyringError, SEAL_OVERHEAD } from '../src/keyring';

function errCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof KeyringError) return e.code;
    throw e;
  }
  return 'no error';
}

describe('Keyring', () => {
  it('accepts 32-byte keys as bytes or base64 (serf keygen format)', () => {
    const bytes = randomBytes(KEY_SIZE);
    const b64 = bytes.toString('base64');
    const k = new Keyring(bytes);
    expect(k.list()).toEqual([b64]);
    expect(k.primary()).toBe(b64);
    // A known serf keygen style key (44 chars of base64).
    const serfStyle = 'HvY8ubRZMgafUOWvrOadwOckVa1wN3QWAo46FVKbVN8=';
    expect(new Keyring(serfStyle).primary()).toBe(serfStyle);
    expect(Keyring.generateKey()).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  });

  it('rejects keys of the wrong size or encoding with an actionable error', () => {
    expect(errCode(() => new Keyring(randomBytes(16)))).toBe('GOSSIP_ERR_KEY_INVALID');
    expect(errCode(() => new Keyring(randomBytes(16).toString('base64')))).toBe('GOSSIP_ERR_KEY_INVALID');
    expect(errCode(() => new Keyring('not base64 at all!'))).toBe('GOSSIP_ERR_KEY_INVALID');
    try {
      new Keyring('abc');
    } catch (e) {
      expect((e as Error).message).toMatch(/generateKey|keygen/);
    }
  });

  it('install / use / remove follow Serf semantics', () => {
    const k1 = Keyring.generateKey();
    const k2 = Keyring.generateKey();
    const ring = new Keyring(k1);
    expect(errCode(() => ring.use(k2))).toBe('GOSSIP_ERR_KEY_NOT_INSTALLED');
    ring.install(k2);
    ring.install(k2); // idempotent
    expect(ring.list()).toEqual([k1, k2]);
    ring.use(k2);
    expect(ring.primary()).toBe(k2);
    expect(ring.list()).toEqual([k2, k1]);
    expect(errCode(() => ring.remove(k2))).toBe('GOSSIP_ERR_REMOVE_PRIMARY');
    expect(ring.remove(k1)).toBe(true);
    expect(ring.remove(k1)).toBe(false);
    expect(ring.list()).toEqual([k2]);
  });

  it('seal/open: the primary seals, any installed key opens, aad is bound', () => {
    const k1 = Keyring.generateKey();
    const k2 = Keyring.generateKey();
    const writer = new Keyring(k1);
    const reader = new Keyring(k2, k1); // k1 installed but not primary
    const msg = new TextEncoder().encode('hello gossip');
    const aad = new Uint8Array([1]);
    const sealed = writer.seal(msg, aad);
    expect(sealed.length).toBe(msg.length + SEAL_OVERHEAD);
    expect(new TextDecoder().decode(reader.open(sealed, aad))).toBe('hello gossip');
    expect(reader.open(sealed, new Uint8Array([2]))).toBeUndefined();
    // Nonces are fresh: sealing twice gives different bytes.
    expect(Buffer.from(writer.seal(msg, aad)).equals(Buffer.from(sealed))).toBe(false);
    // A reader without k1 cannot open it, even if the key id hint is rewritten.
    const other = new Keyring(k2);
    expect(other.open(sealed, aad)).toBeUndefined();
  });

  it('opens a frame whose key-id hint names a key it does not have (tries every key)', () => {
    const k1 = Keyring.generateKey();
    const writer = new Keyring(k1);
    const reader = new Keyring(Keyring.generateKey(), Keyring.generateKey(), k1);
    const sealed = writer.seal(new Uint8Array([9, 9]), new Uint8Array());
    expect([...(reader.open(sealed, new Uint8Array()) ?? [])]).toEqual([9, 9]);
  });
});
