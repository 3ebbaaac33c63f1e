/**
 * Keyring: the shared AES-256-GCM keys that encrypt gossip frames, with
 * Serf's rotation semantics.
 *
 * - Exactly one key is the *primary*: every outgoing frame is sealed with it.
 * - Every installed key may open an incoming frame. Decryption tries the key
 *   whose id the frame names first, then every other installed key, so a
 *   cluster can rotate without a flag day:
 *     1. `install(new)` on every node (all can now read frames sealed with new),
 *     2. `use(new)` on every node (all now write with new; old still reads),
 *     3. `remove(old)` on every node.
 * - The primary cannot be removed (use another key first).
 *
 * Sealed layout (the codec prepends its 1-byte tag and passes the header as
 * additional authenticated data, so a tampered header fails to open):
 *
 *   keyId (4 bytes: first bytes of SHA-256(key), a hint, not a secret)
 *   nonce (12 random bytes, fresh per frame)
 *   ciphertext (same length as the plaintext)
 *   auth tag (16 bytes)
 *
 * Keys are 32 raw bytes, or their base64 encoding as printed by `serf keygen`
 * (and by `Keyring.generateKey()`).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/** AES-256 needs exactly 32 bytes of key. */
export const KEY_SIZE = 32;
/** Key id hint length in a sealed frame. */
export const KEY_ID_SIZE = 4;
/** GCM nonce: 96 bits, the size GCM is designed for; random per frame. */
export const NONCE_SIZE = 12;
/** GCM authentication tag: the full 128 bits. */
export const AUTH_TAG_SIZE = 16;
/** Bytes a sealed payload adds to its plaintext. */
export const SEAL_OVERHEAD = KEY_ID_SIZE + NONCE_SIZE + AUTH_TAG_SIZE;

export type KeyringErrorCode =
  | 'GOSSIP_ERR_KEY_INVALID'
  | 'GOSSIP_ERR_KEY_NOT_INSTALLED'
  | 'GOSSIP_ERR_REMOVE_PRIMARY';

export class KeyringError extends Error {
  override readonly name = 'KeyringError';
  constructor(
    readonly code: KeyringErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A key as raw bytes or as base64 text (Serf's `keygen` format). */
export type KeyInput = Uint8Array | string;

interface InstalledKey {
  readonly bytes: Buffer;
  readonly id: Buffer;
  readonly base64: string;
}

function parseKey(input: KeyInput): InstalledKey {
  let bytes: Buffer;
  if (typeof input === 'string') {
    const text = input.trim();
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
      throw new KeyringError(
        'GOSSIP_ERR_KEY_INVALID',
        `gossip key is not valid base64; generate one with Keyring.generateKey() or \`serf keygen\``,
      );
    }
    bytes = Buffer.from(text, 'base64');
  } else if (input instanceof Uint8Array) {
    bytes = Buffer.from(input);
  } else {
    throw new KeyringError('GOSSIP_ERR_KEY_INVALID', 'gossip key must be a Uint8Array or a base64 string');
  }
  if (bytes.length !== KEY_SIZE) {
    throw new KeyringError(
      'GOSSIP_ERR_KEY_INVALID',
      `gossip key must be ${KEY_SIZE} bytes (AES-256), got ${bytes.length}; generate one with Keyring.generateKey() or \`serf keygen\``,
    );
  }
  const id = createHash('sha256').update(bytes).digest().subarray(0, KEY_ID_SIZE);
  return { bytes, id: Buffer.from(id), base64: bytes.toString('base64') };
}

export class Keyring {
  /** Installed keys; index 0 is always the primary. */
  private keys: InstalledKey[];

  /**
   * @param primary the key used to seal outgoing frames
   * @param others further keys accepted when opening frames
   */
  constructor(primary: KeyInput, ...others: KeyInput[]) {
    this.keys = [parseKey(primary)];
    for (const k of others) this.install(k);
  }

  /** 32 random bytes, base64 encoded, like `serf keygen`. */
  static generateKey(): string {
    return randomBytes(KEY_SIZE).toString('base64');
  }

  /** Adds a key for decryption; installing an installed key is a no-op. */
  install(key: KeyInput): void {
    const k = parseKey(key);
    if (this.indexOf(k) === -1) this.keys.push(k);
  }

  /** Makes an installed key the primary (used to seal every outgoing frame). */
  use(key: KeyInput): void {
    const k = parseKey(key);
    const i = this.indexOf(k);
    if (i === -1) {
      throw new KeyringError(
        'GOSSIP_ERR_KEY_NOT_INSTALLED',
        'cannot use a key that is not installed; install() it first (on every node), then use() it',
      );
    }
    const [chosen] = this.keys.splice(i, 1);
    this.keys.unshift(chosen!);
  }

  /**
   * Removes a key. Returns false if it was not installed.
   * @throws KeyringError GOSSIP_ERR_REMOVE_PRIMARY for the primary key
   */
  remove(key: KeyInput): boolean {
    const k = parseKey(key);
    const i = this.indexOf(k);
    if (i === -1) return false;
    if (i === 0) {
      throw new KeyringError(
        'GOSSIP_ERR_REMOVE_PRIMARY',
        'cannot remove the primary key; use() another installed key first',
      );
    }
    this.keys.splice(i, 1);
    return true;
  }

  /** Installed keys as base64, the primary first. */
  list(): string[] {
    return this.keys.map((k) => k.base64);
  }

  /** The primary key as base64. */
  primary(): string {
    return this.keys[0]!.base64;
  }

  /**
   * Seals `plaintext` with the primary key. `aad` is authenticated but not
   * encrypted and must be passed again, unchanged, to `open`. The key id is
   * written first and is authenticated too.
   */
  seal(plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
    const key = this.keys[0]!;
    const nonce = randomBytes(NONCE_SIZE);
    const cipher = createCipheriv('aes-256-gcm', key.bytes, nonce, { authTagLength: AUTH_TAG_SIZE });
    cipher.setAAD(Buffer.concat([aad, key.id]));
    const body = cipher.update(plaintext);
    const final = cipher.final();
    const tag = cipher.getAuthTag();
    return Buffer.concat([key.id, nonce, body, final, tag]);
  }

  /**
   * Opens a sealed payload with whichever installed key authenticates it
   * (the key named by its id first). Returns undefined if none does.
   */
  open(sealed: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
    if (sealed.length < SEAL_OVERHEAD) return undefined;
    const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    const id = buf.subarray(0, KEY_ID_SIZE);
    const nonce = buf.subarray(KEY_ID_SIZE, KEY_ID_SIZE + NONCE_SIZE);
    const body = buf.subarray(KEY_ID_SIZE + NONCE_SIZE, buf.length - AUTH_TAG_SIZE);
    const tag = buf.subarray(buf.length - AUTH_TAG_SIZE);
    const fullAad = Buffer.concat([aad, id]);
    // Hinted key first, then the rest: rotation means the id may name a key we do not hold.
    const ordered = [...this.keys].sort((a, b) => Number(!a.id.equals(id)) - Number(!b.id.equals(id)));
    for (const key of ordered) {
      try {
        const decipher = createDecipheriv('aes-256-gcm', key.bytes, nonce, { authTagLength: AUTH_TAG_SIZE });
        decipher.setAAD(fullAad);
        decipher.setAuthTag(tag);
        const out = Buffer.concat([decipher.update(body), decipher.final()]);
        return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
      } catch {
        // Wrong key or tampered frame: try the next key.
      }
    }
    return undefined;
  }

  private indexOf(k: InstalledKey): number {
    return this.keys.findIndex((x) => x.bytes.equals(k.bytes));
  }
}
