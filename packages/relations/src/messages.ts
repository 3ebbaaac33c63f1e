/**
 * Link messages: what two relation managers say to each other about one
 * relation. Every message names the relation and both units, the link
 * protocol version it is written in (`v`) and the versions its sender reads
 * (`vr`, [min, max]); both are checked at the boundary (see Versions below).
 *
 *   data  sender -> receiver   the sender's full bag (and, for peers, the app
 *                              bag it wrote) at (`inc`, `version`), as link
 *                              message `seq` of link epoch `epoch`; `base`
 *                              is the lowest seq the sender still holds
 *                              unacknowledged
 *                              and its interface version `ifaceVersion`
 *   ack   receiver -> sender   every seq <= `seq` of `epoch` is applied and
 *                              committed
 *   sync  sender -> receiver   "my bag is at (`inc`, `version`), my last seq
 *                              of `epoch` is `lastSeq`": sent on start, join
 *                              and reconnect
 *   pull  receiver -> sender   "my view of your bag is at (`viewInc`,
 *                              `version`); on `epoch` I expect `expect`":
 *                              answer to a sync that is newer
 *
 * `inc` orders bag versions across a loss of the sender's knowledge base
 * (state.ts); `epoch` numbers the link across a loss of its link store
 * (link-store.ts): sequence numbers count within an epoch, and a newer
 * epoch supersedes older ones.
 *
 * WARNING: only append message types and optional fields; the shapes are
 * part of the protocol between agents of different versions.
 *
 * Versions (memberlist's ProtocolVersionMin/Max). An agent reads the link
 * protocol versions LINK_PROTOCOL.min..max. It writes to a peer the highest
 * version both read, once it has heard the peer's range (every message
 * carries it); before that, its own min. So during a rolling upgrade a peer
 * one version ahead or behind, whose range overlaps, is understood; one
 * whose range does not overlap is refused with REL_ERR_PROTOCOL_VERSION
 * saying which side to upgrade. Messages from agents before ranges carry no
 * `vr`: they read exactly their `v`. Bump max when a version is added;
 * raise min once no agent in the field writes the old one.
 *
 * Data messages carry whole bags, not diffs: a bag is small, and a message
 * that carries the full state makes any later message supersede every
 * earlier one, which is what lets a link re-sync by state.
 */
import * as z from 'zod';
import { assertJson, type JsonObject } from '@rhizome/engine';
import { RelationError } from './errors';
import type { AppBag } from './state';

/** A range of link protocol versions, both ends included. */
export interface LinkVersionRange {
  readonly min: number;
  readonly max: number;
}

/** The link protocol versions this build reads and writes. */
export const LINK_PROTOCOL: LinkVersionRange = Object.freeze({ min: 1, max: 1 });
/** Highest version number a message may claim (a bound on the wire integer). */
export const MAX_LINK_PROTOCOL_VERSION = 255;
/** Every version: for checking a message's shape whatever its version. */
export const ANY_LINK_PROTOCOL: LinkVersionRange = Object.freeze({ min: 1, max: MAX_LINK_PROTOCOL_VERSION });
/** A serialized data message larger than this is refused at the boundary. */
export const MAX_LINK_MESSAGE_BYTES = 256 * 1024;

/** What every message says about versions (see Versions above). */
interface Versioned {
  /** The link protocol version the message is written in. */
  readonly v: number;
  /** The versions its sender reads, [min, max]; absent from agents before ranges (they read exactly `v`). */
  readonly vr?: readonly [number, number];
}

export interface DataMessage extends Versioned {
  readonly type: 'data';
  readonly rel: string;
  readonly from: string;
  readonly to: string;
  readonly epoch: number;
  readonly seq: number;
  readonly base: number;
  readonly inc: number;
  readonly version: number;
  readonly bag: JsonObject;
  readonly app?: AppBag;
  /**
   * The sender's interface version (semver, e.g. "1.0.0"), compared by the
   * receiver (interface-version.ts). Optional: messages from older agents,
   * and ones kept in link stores written before, have none.
   */
  readonly ifaceVersion?: string;
}

export interface AckMessage extends Versioned {
  readonly type: 'ack';
  readonly rel: string;
  readonly from: string;
  readonly to: string;
  readonly epoch: number;
  readonly seq: number;
}

export interface SyncMessage extends Versioned {
  readonly type: 'sync';
  readonly rel: string;
  readonly from: string;
  readonly to: string;
  readonly epoch: number;
  readonly inc: number;
  readonly version: number;
  readonly appVersion: number;
  readonly lastSeq: number;
}

export interface PullMessage extends Versioned {
  readonly type: 'pull';
  readonly rel: string;
  readonly from: string;
  readonly to: string;
  readonly epoch: number;
  readonly expect: number;
  readonly viewInc: number;
  readonly version: number;
}

export type LinkMessage = DataMessage | AckMessage | SyncMessage | PullMessage;

/** A message as the link code builds it: the manager stamps the version when it sends (RelationManager). */
export type Unstamped<M extends LinkMessage> = M extends unknown ? Omit<M, keyof Versioned> : never;
export type OutgoingLinkMessage = Unstamped<LinkMessage>;

/**
 * The version to write to a peer: the highest both read, given the peer's
 * range if it was heard (else `ours.min`, which an older peer most likely
 * reads); undefined when the ranges do not overlap.
 */
export function linkVersionFor(ours: LinkVersionRange, theirs: LinkVersionRange | undefined): number | undefined {
  if (theirs === undefined) return ours.min;
  const v = Math.min(ours.max, theirs.max);
  return v >= Math.max(ours.min, theirs.min) ? v : undefined;
}

/** The versions the sender of a raw message reads, if it says so plausibly (for learning a peer's range even from a message refused). */
export function senderRange(raw: unknown): LinkVersionRange | undefined {
  if (raw === null || typeof raw !== 'object') return undefined;
  const { v, vr } = raw as { v?: unknown; vr?: unknown };
  const ok = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= MAX_LINK_PROTOCOL_VERSION;
  if (Array.isArray(vr) && vr.length === 2 && ok(vr[0]) && ok(vr[1]) && vr[0] <= vr[1]) return { min: vr[0], max: vr[1] };
  if (vr === undefined && ok(v)) return { min: v, max: v };
  return undefined;
}

function describeRange(r: LinkVersionRange): string {
  return r.min === r.max ? `v${r.min}` : `v${r.min}-v${r.max}`;
}

/** Why a message written in `v` by a sender reading `theirs` cannot be read by an agent reading `ours` (undefined: it can). */
export function versionRefusal(v: number, theirs: LinkVersionRange, ours: LinkVersionRange): string | undefined {
  if (v >= ours.min && v <= ours.max) return undefined;
  const head = `link message written in protocol v${v} by a peer that reads ${describeRange(theirs)}; this agent reads ${describeRange(ours)}`;
  if (linkVersionFor(ours, theirs) !== undefined) return `${head}: the peer writes a version both read once it hears from this agent (transient during an upgrade)`;
  return theirs.max < ours.min ? `${head}: upgrade the peer's agent (it is too old)` : `${head}: upgrade this agent (the peer is too new)`;
}

/**
 * Bounds on wire integers. A counter (seq, base, version, ...) grows by one
 * per commit or message: 2^48 is out of reach (a million per second for
 * nine years) and leaves room to count on exactly. A stamp (epoch, inc) is
 * a wall-clock time in ms: a safe integer. Values that are in range but
 * jump implausibly far ahead of what the receiver knows are refused by the
 * receiver (link-protocol.ts `implausible`): once adopted, such a value
 * would leave every later genuine one looking stale.
 */
export const MAX_LINK_COUNTER = 2 ** 48;
export const MAX_LINK_STAMP = Number.MAX_SAFE_INTEGER;

const seq = z.number().int().nonnegative().max(MAX_LINK_COUNTER);
const stamp = z.number().int().nonnegative().max(MAX_LINK_STAMP);
const name = z.string().min(1).max(256);
const bag = z.record(z.string(), z.unknown());
const protocolVersion = z.number().int().min(1).max(MAX_LINK_PROTOCOL_VERSION);
const head = { v: protocolVersion, vr: z.tuple([protocolVersion, protocolVersion]).readonly().optional(), rel: name, from: name, to: name };

const messageSchema = z.discriminatedUnion('type', [
  z.object({
    ...head,
    type: z.literal('data'),
    epoch: stamp,
    seq: seq.min(1),
    base: seq.min(1),
    inc: stamp,
    version: seq,
    bag,
    app: z.object({ bag, version: seq, writer: name, inc: stamp }).optional(),
    ifaceVersion: z.string().regex(/^\d+\.\d+\.\d+$/, 'a semantic version like "1.0.0"').optional(),
  }),
  z.object({ ...head, type: z.literal('ack'), epoch: stamp, seq }),
  z.object({ ...head, type: z.literal('sync'), epoch: stamp, inc: stamp, version: seq, appVersion: seq, lastSeq: seq }),
  z.object({ ...head, type: z.literal('pull'), epoch: stamp, expect: seq.min(1), viewInc: stamp, version: seq }),
]);

/**
 * Checks a message from the network against the versions this agent reads
 * (`ours`, default LINK_PROTOCOL); throws REL_ERR_PROTOCOL_VERSION (with
 * which side to upgrade) or REL_ERR_BAD_MESSAGE saying what is wrong.
 */
export function parseLinkMessage(input: unknown, ours: LinkVersionRange = LINK_PROTOCOL): LinkMessage {
  if (input !== null && typeof input === 'object') {
    const v = (input as { v?: unknown }).v;
    const theirs = senderRange(input);
    if (typeof v !== 'number' || theirs === undefined || v < theirs.min || v > theirs.max) {
      throw new RelationError('REL_ERR_PROTOCOL_VERSION', `link message with version ${JSON.stringify(v)} and range ${JSON.stringify((input as { vr?: unknown }).vr)}: not a version (an integer 1-${MAX_LINK_PROTOCOL_VERSION}) within the range the sender claims to read`);
    }
    const refusal = versionRefusal(v, theirs, ours);
    if (refusal !== undefined) throw new RelationError('REL_ERR_PROTOCOL_VERSION', refusal);
  }
  const r = messageSchema.safeParse(input);
  if (!r.success) {
    throw new RelationError('REL_ERR_BAD_MESSAGE', `malformed link message: ${r.error.issues.map((i) => `${i.path.map(String).join('.') || '(message)'}: ${i.message}`).join('; ')}`);
  }
  const m = r.data as LinkMessage;
  if (m.type === 'data') {
    if (m.base > m.seq) throw new RelationError('REL_ERR_BAD_MESSAGE', `data message base ${m.base} is above its seq ${m.seq}`);
    try {
      assertJson(m.bag, 'bag');
      if (m.app) assertJson(m.app.bag, 'app bag');
    } catch (e) {
      throw new RelationError('REL_ERR_BAD_MESSAGE', `data message carries a bag that is not plain JSON: ${(e as Error).message}`, { cause: e });
    }
    const size = JSON.stringify(m).length;
    if (size > MAX_LINK_MESSAGE_BYTES) {
      throw new RelationError('REL_ERR_BAD_MESSAGE', `data message is ${size} bytes; the limit is ${MAX_LINK_MESSAGE_BYTES}. Publish references (URLs, paths) instead of large values.`);
    }
  }
  return m;
}
