/**
 * Record framing of the durable store's log and snapshot files.
 *
 * A file is a sequence of frames:
 *
 *     [u32 LE payload length][u32 LE crc32(payload)][payload: msgpack bytes]
 *
 * A payload is never empty (msgpack encodes every value in at least one
 * byte), so a length of 0 is always invalid; this matters because a crash can
 * leave a zero-filled region at the end of a file (the size was extended but
 * the data blocks never made it), and crc32 of nothing is 0.
 *
 * Scanning classifies the first bad frame it meets:
 *
 * - **torn tail**: the frame runs past the end of the file (short header or
 *   short payload), or it is the last frame and its checksum or length is bad,
 *   or every byte after it to the end of the file is zero. This is what
 *   an interrupted append leaves behind; the frame was never acknowledged, so
 *   it is dropped and the file may be cut back to the last good frame.
 * - **corruption**: anything else, i.e. a bad frame followed by more bytes
 *   that are not all zero. An append can't produce this, so it is reported as
 *   a `StoreCorruptError` naming the file and byte offset, and nothing is cut.
 *
 * A frame whose checksum matches but whose payload does not decode is
 * corruption wherever it is: the bytes are what was written.
 */
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import { StoreCorruptError } from '../errors';

/** Bytes of the frame header: u32 length + u32 crc32. */
export const FRAME_HEADER_BYTES = 8;

/** Largest payload accepted, in bytes (64 MiB). Larger lengths in a file are bad frames. */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/**
 * The codec of every payload. `useRecords: false` keeps each payload
 * self-describing (no shared structure table to lose); `structuredClone`
 * preserves Sets, Dates and shared references. Maps decode as plain objects:
 * store Map entries as arrays when the key type matters.
 */
const packr = new Packr({ useRecords: false, structuredClone: true });

export function encodePayload(value: unknown): Buffer {
  return packr.pack(value);
}

export function decodePayload(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}

/** Encodes one value as a frame. */
export function encodeFrame(value: unknown): Buffer {
  const payload = encodePayload(value);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  frame.writeUInt32LE(crc32(payload) >>> 0, 4);
  payload.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

export interface ScanResult {
  /** Decoded payloads of the good frames, in file order. */
  values: unknown[];
  /** Length of the good prefix: the offset the file should be cut to. */
  goodBytes: number;
  /** Bytes after the good prefix that belong to a torn tail (0 if none). */
  tornBytes: number;
}

function allZero(buf: Uint8Array, from: number): boolean {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/** The offset of the first complete frame with a matching checksum at or after `from`, or -1. */
function findValidFrame(buf: Buffer, from: number): number {
  for (let p = from; p + FRAME_HEADER_BYTES < buf.length; p++) {
    const length = buf.readUInt32LE(p);
    if (length === 0 || length > MAX_RECORD_BYTES || p + FRAME_HEADER_BYTES + length > buf.length) continue;
    if (crc32(buf.subarray(p + FRAME_HEADER_BYTES, p + FRAME_HEADER_BYTES + length)) >>> 0 === buf.readUInt32LE(p + 4)) return p;
  }
  return -1;
}

/**
 * Scans a file's bytes frame by frame. Returns the good frames and the size of
 * a torn tail; throws `StoreCorruptError` (naming `file` and the byte offset)
 * for a bad frame that is not at the tail.
 */
export function scanFrames(buf: Buffer, file: string): ScanResult {
  const values: unknown[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const torn = (): ScanResult => ({ values, goodBytes: offset, tornBytes: buf.length - offset });
    const remaining = buf.length - offset;
    // Short header: only an interrupted append leaves fewer than 8 bytes.
    if (remaining < FRAME_HEADER_BYTES) return torn();
    const length = buf.readUInt32LE(offset);
    const crc = buf.readUInt32LE(offset + 4);
    const end = offset + FRAME_HEADER_BYTES + length;
    // Short payload: the frame runs past the end of the file. An interrupted
    // append leaves nothing valid after it; a complete, checksummed frame
    // further on means this header was damaged in place (cutting the file
    // here would silently drop acknowledged records).
    if (end > buf.length && length <= MAX_RECORD_BYTES) {
      const next = findValidFrame(buf, offset + 1);
      if (next >= 0) throw new StoreCorruptError(file, offset, `frame length ${length} runs past the end of the file, but a valid frame follows at byte ${next}`);
      return torn();
    }
    let problem: string | undefined;
    if (length === 0) problem = 'zero-length frame';
    else if (length > MAX_RECORD_BYTES) problem = `frame length ${length} exceeds ${MAX_RECORD_BYTES}`;
    else if (crc32(buf.subarray(offset + FRAME_HEADER_BYTES, end)) >>> 0 !== crc) problem = 'checksum mismatch';
    if (problem !== undefined) {
      // The last frame, or the last before a zero-filled tail: an interrupted append.
      if (end >= buf.length || allZero(buf, end)) return torn();
      throw new StoreCorruptError(file, offset, `${problem}, followed by ${buf.length - end} more bytes`);
    }
    let value: unknown;
    try {
      value = decodePayload(buf.subarray(offset + FRAME_HEADER_BYTES, end));
    } catch (err) {
      throw new StoreCorruptError(file, offset, `checksum matches but the payload does not decode (${String(err)})`, {
        cause: err,
      });
    }
    values.push(value);
    offset = end;
  }
  return { values, goodBytes: offset, tornBytes: 0 };
}
