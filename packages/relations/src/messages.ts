/**
 * Link messages: what two relation managers say to each other about one
 * relation. Every message names the relation and both units; `v` is the
 * protocol version, checked at the boundary.
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
 * Data messages carry whole bags, not diffs: a bag is small, and a message
 * that carries the full state makes any later message supersede every
 * earlier one, which is what lets a link re-sync by state.
 */
import * as z from 'zod';
import { assertJson, type JsonObject } from '@rhizome/engine';
import { RelationError } from './errors';
import type { AppBag } from './state';

export const LINK_PROTOCOL_VERSION = 1;
/** A serialized data message larger than this is refused at the boundary. */
export const MAX_LINK_MESSAGE_BYTES = 256 * 1024;

export interface DataMessage {
  readonly v: 1;
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

export interface AckMessage {
  readonly v: 1;
  readonly type: 'ack';
  readonly rel: string;
  readonly from: string;
  readonly to: string;
  readonly epoch: number;
  readonly seq: number;
}

export interface SyncMessage {
  readonly v: 1;
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

export interface PullMessage {
  readonly v: 1;
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
const head = { v: z.literal(LINK_PROTOCOL_VERSION), rel: name, from: name, to: name };

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

/** Checks a message from the network; throws REL_ERR_BAD_MESSAGE saying what is wrong. */
export function parseLinkMessage(input: unknown): LinkMessage {
  if (input !== null && typeof input === 'object' && (input as { v?: unknown }).v !== LINK_PROTOCOL_VERSION) {
    throw new RelationError('REL_ERR_BAD_MESSAGE', `link protocol version ${JSON.stringify((input as { v?: unknown }).v)} is not supported (this agent speaks ${LINK_PROTOCOL_VERSION}); upgrade the older agent`);
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
