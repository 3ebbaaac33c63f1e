/**
 * Frame codec: how an envelope of gossip messages becomes bytes on the wire,
 * and how untrusted bytes become an envelope again (or a typed FrameError).
 *
 * Frame layout (everything a Transport carries):
 *
 *   plaintext:  [label header] 0x00 | msgpack(envelope)
 *   encrypted:  [label header] 0x01 | keyId(4) | nonce(12) | AES-256-GCM(msgpack(envelope)) | authTag(16)
 *   label header (only when the cluster has a label): 0x02 | length(1) | label (UTF-8, 1..255 bytes)
 *
 * The cluster label is memberlist's `Label`: it keeps two clusters on one
 * network apart (a frame from the other cluster is refused before any other
 * work, even before decryption), and with a keyring it is authenticated
 * too (header and tag are the AES-GCM additional data), so it cannot be
 * stripped or swapped on the way. A node without a label refuses labelled
 * frames, and a labelled node refuses unlabelled ones.
 *
 * The envelope is the msgpack map `{ v, pmin, pmax, from, addr, msgs }`:
 * the protocol version the frame speaks and the range its sender
 * understands (versions.ts), sender node name, sender address, and an
 * array of messages.
 * `encodeFrames` packs as many messages per frame as fit under
 * `maxFrameSize` (the whole frame, tag and crypto overhead included), in
 * order; a message that cannot fit in a frame on its own is a typed error at
 * the sender rather than a silent drop at the receiver.
 *
 * Untrusted input, in this order, so that nothing unchecked gets further:
 *   1. size: frames above `maxFrameSize` are rejected before any work;
 *   1b. label: the label header must name this node's cluster (or be absent
 *      when the node has none);
 *   2. tag and keyring: with a keyring only authenticated frames are
 *      accepted (plaintext is refused); without one, encrypted frames are
 *      refused with their own code;
 *   3. msgpack shape: a hand-written scanner walks the bytes *before*
 *      msgpackr sees them and accepts only plain data (nil, booleans,
 *      numbers, strings, binary, arrays, maps with string keys, and the
 *      `undefined` marker), nesting at most MAX_DEPTH deep, with every
 *      declared length backed by bytes actually present and no trailing
 *      bytes. msgpackr's extensions (records, structured clone, Date, Set,
 *      RegExp, Error, typed arrays, bundled strings) are therefore never
 *      reached, so a frame cannot allocate more than a small multiple of
 *      its own size nor produce anything but plain values;
 *   4. envelope fields, one by one (`parseEnvelope`).
 * Message bodies are left to messages.ts (`parseMessage`).
 *
 * Invariant: every frame `encodeFrames` produces decodes with `decodeFrame`
 * (same options) to the same envelope, messages in the same order.
 */
import { Packr } from 'msgpackr';
import type { Keyring } from '../keyring';
import { SEAL_OVERHEAD } from '../keyring';
import { FrameError } from './frame-error';
import { MAX_DEPTH, scanMsgpack } from './msgpack-scan';
import { checkVersions, PROTOCOL_VERSIONS, type VersionRange } from './versions';

export { FrameError, type FrameErrorCode } from './frame-error';

// Protocol versions are ranges (versions.ts): a frame is refused only outside the receiver's range.
export { PROTOCOL_VERSION, PROTOCOL_VERSIONS, type VersionRange } from './versions';

/**
 * Default largest frame, tag and encryption included: 64 KiB. Large enough
 * for a push-pull state of several hundred members and a 9 KiB user event,
 * small enough that a flood of maximal frames stays cheap to reject.
 */
export const DEFAULT_MAX_FRAME_SIZE = 64 * 1024;

/** Longest accepted node name (characters). */
export const MAX_NODE_NAME_LENGTH = 128;
/** Longest accepted address (characters); "host:port" fits easily. */
export const MAX_ADDRESS_LENGTH = 256;
/**
 * Deepest nesting of arrays/maps inside a user event or query payload (a
 * scalar is 0, `[1]` is 1). The payload's value sits at depth 4 of its frame
 * (envelope, msgs array, message, payload) and every value down to the
 * innermost scalar must stay within MAX_DEPTH, so senders check this before
 * queueing anything: a deeper payload would be accepted locally and then make
 * every frame carrying it unencodable.
 */
export const MAX_PAYLOAD_DEPTH = MAX_DEPTH - 4;

/** Whether `value` nests deeper than `limit` arrays/maps (iterative, stops early: safe on hostile input). */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null || v instanceof Uint8Array) continue;
    if (d + 1 > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return false;
}

/** First byte of every frame. */
export const FRAME_TAG_PLAINTEXT = 0x00;
export const FRAME_TAG_ENCRYPTED = 0x01;
/** First byte of a labelled frame: the label header precedes the tag. */
export const FRAME_TAG_LABEL = 0x02;
/** Longest cluster label, in UTF-8 bytes (memberlist: 255). */
export const MAX_LABEL_BYTES = 255;

export interface Envelope {
  /** Protocol version the frame speaks. */
  v: number;
  /** Versions its sender understands ([v, v] for a sender from before ranges). */
  pmin: number;
  pmax: number;
  /** Sender node name. */
  from: string;
  /** Sender address (where it listens). */
  addr: string;
  msgs: unknown[];
}

export interface CodecOptions {
  /** Largest frame in bytes, tag and encryption overhead included. */
  maxFrameSize: number;
  /** When set, frames are sealed with its primary key and plaintext is refused. */
  keyring?: Keyring | undefined;
  /**
   * Cluster label ('' or absent: none). Frames carry it; decodeFrame refuses
   * frames with another label, or with none when we have one (and the
   * reverse). Check it once with `checkLabel`.
   */
  label?: string | undefined;
  /**
   * encodeFrames only: remember the encoding of messages `cacheFrom` and
   * later (objects) here, and reuse it when the same object is sent again.
   * A broadcast is sent to several members per round and retransmitted
   * several times, so a mass join otherwise spends much of its CPU encoding
   * the same messages. Only for messages that are never mutated after the
   * first send (the node's queued broadcasts).
   */
  cache?: WeakMap<object, Uint8Array> | undefined;
  cacheFrom?: number | undefined;
  /** Versions this side understands (default PROTOCOL_VERSIONS): decodeFrame refuses others; encodeFrames advertises them. */
  versions?: VersionRange | undefined;
  /** encodeFrames only: the version to speak, within `versions` (default its newest; nodes pick per peer with speakTo). */
  speak?: number | undefined;
}

/**
 * msgpackr configured for untrusted input: no records, no structured clone,
 * no extra types, no bundled strings, 64-bit integers decoded as numbers
 * (never bigint), maps as plain objects (msgpackr renames a `__proto__` key).
 * The scanner below keeps every extension out anyway.
 */
const packr = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  mapsAsObjects: true,
  variableMapSize: true,
  int64AsType: 'number',
  useBigIntExtension: false,
});

const FRAME_TAG_SIZE = 1;

function checkMaxFrameSize(maxFrameSize: number): void {
  if (!Number.isInteger(maxFrameSize) || maxFrameSize < 64) {
    throw new TypeError(`maxFrameSize must be an integer >= 64 bytes, got ${String(maxFrameSize)}`);
  }
}

/**
 * Validates a cluster label; returns it. Throws TypeError saying what to
 * change (a string of at most MAX_LABEL_BYTES UTF-8 bytes; '' means none).
 */
export function checkLabel(label: unknown): string {
  if (typeof label !== 'string') throw new TypeError(`cluster label must be a string, got ${typeof label}`);
  const bytes = Buffer.byteLength(label, 'utf8');
  if (bytes > MAX_LABEL_BYTES) {
    throw new TypeError(`cluster label is ${bytes} bytes of UTF-8; at most ${MAX_LABEL_BYTES} are allowed`);
  }
  return label;
}

/** The label header for a label, cached for the last label seen (one cluster per process, normally). */
const NO_LABEL = new Uint8Array(0);
let lastLabel: { label: string; header: Uint8Array } = { label: '', header: NO_LABEL };

function labelHeader(label: string | undefined): Uint8Array {
  if (label === undefined || label === '') return NO_LABEL;
  if (lastLabel.label === label) return lastLabel.header;
  const text = Buffer.from(checkLabel(label), 'utf8');
  const header = new Uint8Array(2 + text.length);
  header[0] = FRAME_TAG_LABEL;
  header[1] = text.length;
  header.set(text, 2);
  lastLabel = { label, header };
  return header;
}

/** A peer-supplied label, safe to put in a log line. */
function quoteLabel(bytes: Uint8Array): string {
  const text = Buffer.from(bytes).toString('utf8');
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

function arrayHeaderSize(n: number): number {
  return n < 16 ? 1 : n < 0x10000 ? 3 : 5;
}

function writeArrayHeader(out: Uint8Array, at: number, n: number): number {
  if (n < 16) {
    out[at] = 0x90 | n;
    return at + 1;
  }
  if (n < 0x10000) {
    out[at] = 0xdc;
    out[at + 1] = n >>> 8;
    out[at + 2] = n & 0xff;
    return at + 3;
  }
  out[at] = 0xdd;
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(at + 1, n);
  return at + 5;
}

/**
 * Why `value` is not plain data, or undefined. msgpackr would otherwise turn
 * a Set into an array or a bigint into a number without a word.
 */
function notPlain(value: unknown, depth: number): string | undefined {
  if (depth > MAX_DEPTH) return `nesting deeper than ${MAX_DEPTH}`;
  switch (typeof value) {
    case 'undefined':
    case 'boolean':
    case 'number':
    case 'string':
      return undefined;
    case 'object': {
      if (value === null || value instanceof Uint8Array && (value.constructor === Uint8Array || Buffer.isBuffer(value))) {
        return undefined;
      }
      if (Array.isArray(value)) {
        for (const item of value) {
          const p = notPlain(item, depth + 1);
          if (p !== undefined) return p;
        }
        return undefined;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        return `a ${(value as object).constructor?.name ?? 'non-plain object'}`;
      }
      for (const item of Object.values(value)) {
        const p = notPlain(item, depth + 1);
        if (p !== undefined) return p;
      }
      return undefined;
    }
    default:
      return `a ${typeof value}`;
  }
}

function packChecked(value: unknown, what: string): Uint8Array {
  const unfit = notPlain(value, 1);
  if (unfit !== undefined) {
    throw new FrameError(
      'GOSSIP_ERR_UNENCODABLE',
      `${what} is not plain data (${unfit}); use only null, booleans, numbers, strings, Uint8Array, arrays and plain objects`,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = packr.pack(value);
  } catch (cause) {
    throw new FrameError('GOSSIP_ERR_UNENCODABLE', `${what} cannot be encoded: ${(cause as Error).message}`, { cause });
  }
  const problem = scanMsgpack(bytes, 0, bytes.length);
  if (problem !== undefined) {
    throw new FrameError(
      'GOSSIP_ERR_UNENCODABLE',
      `${what} is not plain data (${problem}); use only null, booleans, numbers, strings, Uint8Array, arrays and plain objects`,
    );
  }
  return bytes;
}

/** The envelope up to its msgs array, for the last sender and versions seen (one node per process, normally). */
let lastPrefix: { from: string; addr: string; v: number; range: VersionRange; prefix: Uint8Array } | undefined;

function envelopePrefix(from: string, addr: string, v: number, range: VersionRange): Uint8Array {
  const last = lastPrefix;
  if (last !== undefined && last.from === from && last.addr === addr && last.v === v && last.range === range) return last.prefix;
  // msgs last: the messages' bytes are appended after this prefix (see encodeFrames).
  const head = packr.pack({ v, pmin: range.min, pmax: range.max, from, addr, msgs: [] });
  const prefix = head.slice(0, head.length - 1);
  lastPrefix = { from, addr, v, range, prefix };
  return prefix;
}

/**
 * Encodes messages into as few frames as possible, in order, each at most
 * `maxFrameSize` bytes. No messages, no frames.
 * @throws FrameError GOSSIP_ERR_MESSAGE_TOO_LARGE if one message cannot fit alone,
 *   GOSSIP_ERR_UNENCODABLE if a value is not plain data.
 */
export function encodeFrames(
  env: { from: string; addr: string; msgs: unknown[] },
  opts: CodecOptions,
): Uint8Array[] {
  checkMaxFrameSize(opts.maxFrameSize);
  if (env.msgs.length === 0) return [];
  if (typeof env.from !== 'string' || env.from.length === 0 || env.from.length > MAX_NODE_NAME_LENGTH) {
    throw new FrameError(
      'GOSSIP_ERR_UNENCODABLE',
      `node name must be a non-empty string of at most ${MAX_NODE_NAME_LENGTH} characters`,
    );
  }
  if (typeof env.addr !== 'string' || env.addr.length > MAX_ADDRESS_LENGTH) {
    throw new FrameError('GOSSIP_ERR_UNENCODABLE', `address must be a string of at most ${MAX_ADDRESS_LENGTH} characters`);
  }
  // The envelope with an empty msgs array ends in 0x90 (fixarray 0): drop it
  // and write the real array header, then the messages' bytes (msgpack is
  // concatenative, so this is exactly pack({ v, from, addr, msgs })).
  const range = opts.versions ?? PROTOCOL_VERSIONS;
  const speak = opts.speak ?? range.max;
  if (!Number.isInteger(speak) || speak < range.min || speak > range.max) {
    throw new TypeError(`cannot speak protocol version ${String(speak)}: this side understands ${range.min}..${range.max}`);
  }
  const prefix = envelopePrefix(env.from, env.addr, speak, range);
  const header = labelHeader(opts.label);
  const overhead = header.length + FRAME_TAG_SIZE + (opts.keyring ? SEAL_OVERHEAD : 0) + prefix.length;
  const cache = opts.cache;
  const cacheFrom = opts.cacheFrom ?? 0;
  const encoded = env.msgs.map((m, i) => {
    if (cache === undefined || i < cacheFrom || typeof m !== 'object' || m === null) return packChecked(m, `message ${i}`);
    let bytes = cache.get(m);
    if (bytes === undefined) {
      // A copy: msgpackr's result is a view into a shared 8 KiB chunk, which a long-lived entry would pin.
      bytes = packChecked(m, `message ${i}`).slice();
      cache.set(m, bytes);
    }
    return bytes;
  });

  const frames: Uint8Array[] = [];
  let start = 0;
  while (start < encoded.length) {
    let end = start;
    let body = 0;
    while (end < encoded.length) {
      const next = body + encoded[end]!.length;
      if (overhead + arrayHeaderSize(end + 1 - start) + next > opts.maxFrameSize) break;
      body = next;
      end++;
    }
    if (end === start) {
      const size = overhead + arrayHeaderSize(1) + encoded[start]!.length;
      throw new FrameError(
        'GOSSIP_ERR_MESSAGE_TOO_LARGE',
        `message ${start} needs a ${size}-byte frame, above maxFrameSize ${opts.maxFrameSize}; send less data per message or raise maxFrameSize on every node`,
      );
    }
    const count = end - start;
    const plain = new Uint8Array(FRAME_TAG_SIZE + prefix.length + arrayHeaderSize(count) + body);
    plain[0] = opts.keyring ? FRAME_TAG_ENCRYPTED : FRAME_TAG_PLAINTEXT;
    plain.set(prefix, FRAME_TAG_SIZE);
    let at = writeArrayHeader(plain, FRAME_TAG_SIZE + prefix.length, count);
    for (let i = start; i < end; i++) {
      plain.set(encoded[i]!, at);
      at += encoded[i]!.length;
    }
    if (opts.keyring) {
      // Label header and tag are authenticated: a frame cannot be moved to another cluster's label.
      const aad = new Uint8Array(header.length + FRAME_TAG_SIZE);
      aad.set(header, 0);
      aad[header.length] = FRAME_TAG_ENCRYPTED;
      const sealed = opts.keyring.seal(plain.subarray(FRAME_TAG_SIZE), aad);
      const frame = new Uint8Array(aad.length + sealed.length);
      frame.set(aad, 0);
      frame.set(sealed, aad.length);
      frames.push(frame);
    } else if (header.length > 0) {
      const frame = new Uint8Array(header.length + plain.length);
      frame.set(header, 0);
      frame.set(plain, header.length);
      frames.push(frame);
    } else {
      frames.push(plain);
    }
    start = end;
  }
  return frames;
}

/**
 * Decodes one untrusted frame.
 * @throws FrameError with the reason it was rejected (see FrameErrorCode).
 */
export function decodeFrame(frame: Uint8Array, opts: CodecOptions): Envelope {
  if (!(frame instanceof Uint8Array)) {
    throw new FrameError('GOSSIP_ERR_MALFORMED_FRAME', 'frame is not binary data');
  }
  if (frame.length > opts.maxFrameSize) {
    throw new FrameError(
      'GOSSIP_ERR_FRAME_TOO_LARGE',
      `frame of ${frame.length} bytes exceeds maxFrameSize ${opts.maxFrameSize}`,
    );
  }
  const at = checkFrameLabel(frame, opts.label);
  if (frame.length < at + FRAME_TAG_SIZE + 1) {
    throw new FrameError('GOSSIP_ERR_MALFORMED_FRAME', `frame of ${frame.length} bytes is too short`);
  }
  const tag = frame[at];
  let body: Uint8Array;
  if (tag === FRAME_TAG_PLAINTEXT) {
    if (opts.keyring) {
      throw new FrameError(
        'GOSSIP_ERR_PLAINTEXT_REFUSED',
        'plaintext frame refused: this node requires encryption; give the sender the cluster keyring',
      );
    }
    body = frame.subarray(at + FRAME_TAG_SIZE);
  } else if (tag === FRAME_TAG_ENCRYPTED) {
    if (!opts.keyring) {
      throw new FrameError(
        'GOSSIP_ERR_NO_KEYRING',
        'encrypted frame refused: this node has no keyring; configure the cluster keyring to talk to encrypted nodes',
      );
    }
    const opened = opts.keyring.open(frame.subarray(at + FRAME_TAG_SIZE), frame.subarray(0, at + FRAME_TAG_SIZE));
    if (opened === undefined) {
      throw new FrameError(
        'GOSSIP_ERR_DECRYPT',
        'encrypted frame did not authenticate with any installed key (wrong key, or tampered)',
      );
    }
    body = opened;
  } else {
    throw new FrameError('GOSSIP_ERR_MALFORMED_FRAME', `unknown frame tag 0x${(tag ?? 0).toString(16)}`);
  }
  const problem = scanMsgpack(body, 0, body.length);
  if (problem !== undefined) {
    throw new FrameError('GOSSIP_ERR_MALFORMED_FRAME', `frame body rejected: ${problem}`);
  }
  let value: unknown;
  try {
    value = packr.unpack(body);
  } catch (cause) {
    throw new FrameError('GOSSIP_ERR_MALFORMED_FRAME', `frame body is not valid msgpack: ${(cause as Error).message}`, {
      cause,
    });
  }
  return parseEnvelope(value, opts.versions ?? PROTOCOL_VERSIONS);
}

/**
 * Checks the label header against ours before anything else; returns where
 * the tag byte is.
 */
function checkFrameLabel(frame: Uint8Array, label: string | undefined): number {
  const ours = label ?? '';
  if (frame[0] !== FRAME_TAG_LABEL) {
    if (ours === '') return 0;
    throw new FrameError(
      'GOSSIP_ERR_LABEL',
      `frame carries no cluster label; this node is in cluster ${JSON.stringify(ours)}: give the sender the same label (or it belongs to another cluster)`,
    );
  }
  if (frame.length < 2) throw new FrameError('GOSSIP_ERR_MALFORMED_FRAME', 'frame is too short for its label header');
  const len = frame[1]!;
  if (len === 0 || frame.length < 2 + len) {
    throw new FrameError('GOSSIP_ERR_MALFORMED_FRAME', 'frame label header is empty or longer than the frame');
  }
  const theirs = frame.subarray(2, 2 + len);
  const header = labelHeader(ours);
  if (ours === '') {
    throw new FrameError(
      'GOSSIP_ERR_LABEL',
      `frame carries cluster label ${quoteLabel(theirs)}; this node has none: give it the same label (or the sender belongs to another cluster)`,
    );
  }
  let same = len === header.length - 2;
  for (let i = 0; same && i < len; i++) same = theirs[i] === header[2 + i];
  if (!same) {
    throw new FrameError(
      'GOSSIP_ERR_LABEL',
      `frame from cluster ${quoteLabel(theirs)} refused: this node is in cluster ${JSON.stringify(ours)}`,
    );
  }
  return 2 + len;
}

/** Validates a decoded envelope field by field. */
export function parseEnvelope(value: unknown, versions: VersionRange = PROTOCOL_VERSIONS): Envelope {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new FrameError('GOSSIP_ERR_MALFORMED_FRAME', 'envelope is not a map');
  }
  const o = value as Record<string, unknown>;
  const { from, addr, msgs } = o;
  const { v, pmin, pmax } = checkVersions(o['v'], o['pmin'], o['pmax'], versions);
  if (typeof from !== 'string' || from.length === 0 || from.length > MAX_NODE_NAME_LENGTH) {
    throw new FrameError(
      'GOSSIP_ERR_MALFORMED_FRAME',
      `envelope field from is not a node name (non-empty string of at most ${MAX_NODE_NAME_LENGTH} characters)`,
    );
  }
  if (typeof addr !== 'string' || addr.length > MAX_ADDRESS_LENGTH) {
    throw new FrameError(
      'GOSSIP_ERR_MALFORMED_FRAME',
      `envelope field addr is not an address (string of at most ${MAX_ADDRESS_LENGTH} characters)`,
    );
  }
  if (!Array.isArray(msgs)) {
    throw new FrameError('GOSSIP_ERR_MALFORMED_FRAME', 'envelope field msgs is not an array');
  }
  return { v, pmin, pmax, from, addr, msgs };
}
