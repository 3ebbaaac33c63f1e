/**
 * @internal Encoded size of a value, as msgpack (the codec's format), for
 * size limits and broadcast budgets.
 */
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, structuredClone: false, moreTypes: false, bundleStrings: false });

export function encodedBytes(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function encodedSize(value: unknown): number {
  return packr.pack(value).length;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** FNV-1a, 32 bits: a payload fingerprint for event dedupe digests (not cryptographic). */
export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i] as number;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
