/**
 * Gossip message types and the one parser that admits them.
 *
 * A frame (codec.ts) carries an envelope `{ v, from, addr, msgs }`; each
 * element of `msgs` is one of the messages below, a plain object whose `t`
 * field is its numeric type. Everything decoded off the wire is `unknown`
 * until `parseMessage` has checked every field: unknown types and bad shapes
 * throw a MessageError (the node counts and drops it), so the protocol code
 * only ever sees well-typed messages with bounded sizes.
 *
 * WARNING: ONLY APPEND TO THE MessageType LIST. The numeric values are part
 * of the protocol itself; renumbering breaks mixed-version clusters.
 */
import { MessageError } from '../errors';

export const MessageType = Object.freeze({
  Ping: 1,
  IndirectPing: 2,
  Ack: 3,
  Nack: 4,
  Suspect: 5,
  Alive: 6,
  Dead: 7,
  PushPull: 8,
  UserEvent: 9,
  Query: 10,
  QueryResponse: 11,
  Reliable: 12,
  ReliableAck: 13,
  Conflict: 14,
  Heard: 15,
  Direct: 16,
} as const);

/** Longest node name, address, event or query name accepted. */
export const MAX_NAME_LENGTH = 256;
/** Tags: at most this many keys and this many bytes of keys + values (memberlist MetaMaxSize is 512). */
export const MAX_TAG_COUNT = 64;
export const MAX_TAGS_SIZE = 512;
/** Member entries in one push-pull message (a full state is split across several). */
export const PUSH_PULL_CHUNK = 64;
/** Node names in one query's filter. */
export const MAX_FILTER_NODES = 1024;
/** Longest tag filter regex source. */
export const MAX_TAG_FILTER_LENGTH = 256;

export type Tags = Readonly<Record<string, string>>;

/** Member status on the wire. */
export const WireStatus = Object.freeze({ Alive: 0, Suspect: 1, Failed: 2, Left: 3 } as const);
export type WireStatus = (typeof WireStatus)[keyof typeof WireStatus];

export interface PingMsg { t: 1; seq: number; target: string }
export interface IndirectPingMsg { t: 2; seq: number; target: string; targetAddr: string; nack: boolean }
export interface AckMsg { t: 3; seq: number }
export interface NackMsg { t: 4; seq: number }
export interface SuspectMsg {
  t: 5;
  node: string;
  inc: number;
  from: string;
  /** The accuser has stream evidence: the suspect's host refused or reset a connection (nobody listening). */
  ev: boolean;
}
export interface AliveMsg { t: 6; node: string; addr: string; inc: number; tags: Tags }
export interface DeadMsg { t: 7; node: string; inc: number; from: string }
export interface WireMember { n: string; a: string; i: number; s: WireStatus; g: Tags }
export interface PushPullMsg {
  t: 8;
  join: boolean;
  /** Set on the last chunk of a request: the receiver answers with its own state. */
  reply: boolean;
  /** This chunk is part of an answer to a request. */
  ans: boolean;
  members: WireMember[];
  /** Sender's user-event Lamport clock. */
  ev: number;
  /** Sender's query Lamport clock. */
  qt: number;
  /** In a join answer: the user events the sender has seen, as [Lamport time, name, payload hash], so the joiner never replays them. */
  seen: EventDigest[] | null;
}
export type EventDigest = [lt: number, name: string, hash: number];
/** Event digests in one push-pull message. */
export const MAX_EVENT_DIGESTS = 2048;
export interface UserEventMsg { t: 9; lt: number; name: string; payload: unknown; cc: boolean }
export interface QueryMsg {
  t: 10;
  lt: number;
  id: number;
  /** Requester's node name and address: responses go straight back there. */
  from: string;
  addr: string;
  name: string;
  payload: unknown;
  filterNodes: string[] | null;
  filterTags: Record<string, string> | null;
  ack: boolean;
  timeout: number;
}
export interface QueryResponseMsg { t: 11; lt: number; id: number; from: string; ack: boolean; payload: unknown }
export interface ReliableMsg { t: 12; sid: number; seq: number; base: number; payload: unknown }
export interface ReliableAckMsg { t: 13; sid: number; upTo: number }
/** "The name `node` is owned by the live member at `addr`": sent to a node whose claim was refused. */
export interface ConflictMsg { t: 14; node: string; addr: string }

/** "`from` received a frame from the suspect `node` (at incarnation `inc`) just now": it is slow, not dead. */
export interface HeardMsg { t: 15; node: string; inc: number; from: string }

/**
 * A best-effort message to one member (memberlist's SendBestEffort): no
 * sequence number, ack or retransmit; for a layer with its own (relation links).
 */
export interface DirectMsg { t: 16; payload: unknown }

export type Message =
  | PingMsg | IndirectPingMsg | AckMsg | NackMsg | SuspectMsg | AliveMsg | DeadMsg | PushPullMsg
  | UserEventMsg | QueryMsg | QueryResponseMsg | ReliableMsg | ReliableAckMsg | ConflictMsg | HeardMsg | DirectMsg;

// ---------------------------------------------------------------------------
// Field checks. Each throws MessageError('GOSSIP_ERR_MALFORMED_MESSAGE').

type Obj = Record<string, unknown>;

function bad(what: string): never {
  throw new MessageError('GOSSIP_ERR_MALFORMED_MESSAGE', `malformed message: ${what}`);
}

function uint(o: Obj, k: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(`${k} must be a non-negative integer`);
  return v;
}

function str(o: Obj, k: string, allowEmpty = false): string {
  const v = o[k];
  if (typeof v !== 'string' || v.length > MAX_NAME_LENGTH || (!allowEmpty && v.length === 0)) {
    bad(`${k} must be a string of 1..${MAX_NAME_LENGTH} characters`);
  }
  return v;
}

function bool(o: Obj, k: string): boolean {
  const v = o[k];
  if (typeof v !== 'boolean') bad(`${k} must be a boolean`);
  return v;
}

function isPlainObject(v: unknown): v is Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Validate tags from the wire or from the user: string → string, bounded. */
export function parseTags(v: unknown, what = 'tags'): Tags {
  if (!isPlainObject(v)) bad(`${what} must be an object of strings`);
  const keys = Object.keys(v);
  if (keys.length > MAX_TAG_COUNT) bad(`${what} has ${keys.length} keys (max ${MAX_TAG_COUNT})`);
  let size = 0;
  const out: Record<string, string> = {};
  for (const k of keys) {
    const val = v[k];
    if (typeof val !== 'string') bad(`${what}.${k} must be a string`);
    size += k.length + val.length;
    out[k] = val;
  }
  if (size > MAX_TAGS_SIZE) bad(`${what} total ${size} characters (max ${MAX_TAGS_SIZE})`);
  return Object.freeze(out);
}

function stringArray(o: Obj, k: string, max: number): string[] | null {
  const v = o[k];
  if (v === null || v === undefined) return null;
  if (!Array.isArray(v) || v.length > max) bad(`${k} must be an array of at most ${max} strings`);
  for (const s of v) if (typeof s !== 'string' || s.length > MAX_NAME_LENGTH) bad(`${k} must hold strings`);
  return v as string[];
}

function tagFilter(o: Obj, k: string): Record<string, string> | null {
  const v = o[k];
  if (v === null || v === undefined) return null;
  if (!isPlainObject(v)) bad(`${k} must be an object`);
  const keys = Object.keys(v);
  if (keys.length > MAX_TAG_COUNT) bad(`${k} has too many keys`);
  const out: Record<string, string> = {};
  for (const key of keys) {
    const re = v[key];
    if (typeof re !== 'string' || re.length > MAX_TAG_FILTER_LENGTH) bad(`${k}.${key} must be a regex source string`);
    out[key] = re;
  }
  return out;
}

function digests(v: unknown): EventDigest[] | null {
  if (v === null || v === undefined) return null;
  if (!Array.isArray(v) || v.length > MAX_EVENT_DIGESTS) bad(`seen must be an array of at most ${MAX_EVENT_DIGESTS} digests`);
  return v.map((d: unknown): EventDigest => {
    if (!Array.isArray(d) || d.length !== 3) bad('event digest must be [lt, name, hash]');
    const [lt, name, hash] = d as unknown[];
    if (typeof lt !== 'number' || !Number.isSafeInteger(lt) || lt < 0) bad('event digest lt must be a non-negative integer');
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH) bad('event digest name must be a string');
    if (typeof hash !== 'number' || !Number.isInteger(hash) || hash < 0 || hash > 0xffffffff) bad('event digest hash must be a uint32');
    return [lt, name, hash];
  });
}

function wireMember(v: unknown): WireMember {
  if (!isPlainObject(v)) bad('push-pull member must be an object');
  const s = uint(v, 's');
  if (s > 3) bad('push-pull member status must be 0..3');
  return { n: str(v, 'n'), a: str(v, 'a'), i: uint(v, 'i'), s: s as WireStatus, g: parseTags(v['g'], 'member tags') };
}

/**
 * The boundary: turn one decoded, untrusted value into a typed Message or
 * throw a MessageError (GOSSIP_ERR_UNKNOWN_TYPE or GOSSIP_ERR_MALFORMED_MESSAGE).
 */
export function parseMessage(raw: unknown): Message {
  if (!isPlainObject(raw)) bad('not an object');
  const t = raw['t'];
  switch (t) {
    case MessageType.Ping:
      return { t, seq: uint(raw, 'seq'), target: str(raw, 'target') };
    case MessageType.IndirectPing:
      return { t, seq: uint(raw, 'seq'), target: str(raw, 'target'), targetAddr: str(raw, 'targetAddr'), nack: bool(raw, 'nack') };
    case MessageType.Ack:
      return { t, seq: uint(raw, 'seq') };
    case MessageType.Nack:
      return { t, seq: uint(raw, 'seq') };
    case MessageType.Suspect:
      return { t, node: str(raw, 'node'), inc: uint(raw, 'inc'), from: str(raw, 'from'), ev: raw['ev'] === true };
    case MessageType.Alive:
      return { t, node: str(raw, 'node'), addr: str(raw, 'addr'), inc: uint(raw, 'inc'), tags: parseTags(raw['tags']) };
    case MessageType.Dead:
      return { t, node: str(raw, 'node'), inc: uint(raw, 'inc'), from: str(raw, 'from') };
    case MessageType.PushPull: {
      const members = raw['members'];
      if (!Array.isArray(members) || members.length > PUSH_PULL_CHUNK) bad(`members must be an array of at most ${PUSH_PULL_CHUNK}`);
      return {
        t, join: bool(raw, 'join'), reply: bool(raw, 'reply'), ans: bool(raw, 'ans'), members: members.map(wireMember), ev: uint(raw, 'ev'), qt: uint(raw, 'qt'),
        seen: digests(raw['seen']),
      };
    }
    case MessageType.UserEvent:
      return { t, lt: uint(raw, 'lt'), name: str(raw, 'name'), payload: raw['payload'] ?? null, cc: bool(raw, 'cc') };
    case MessageType.Query:
      return {
        t,
        lt: uint(raw, 'lt'),
        id: uint(raw, 'id'),
        from: str(raw, 'from'),
        addr: str(raw, 'addr'),
        name: str(raw, 'name'),
        payload: raw['payload'] ?? null,
        filterNodes: stringArray(raw, 'filterNodes', MAX_FILTER_NODES),
        filterTags: tagFilter(raw, 'filterTags'),
        ack: bool(raw, 'ack'),
        timeout: uint(raw, 'timeout'),
      };
    case MessageType.QueryResponse:
      return { t, lt: uint(raw, 'lt'), id: uint(raw, 'id'), from: str(raw, 'from'), ack: bool(raw, 'ack'), payload: raw['payload'] ?? null };
    case MessageType.Reliable: {
      const seq = uint(raw, 'seq');
      const base = uint(raw, 'base');
      if (base > seq || seq === 0) bad('reliable seq must be >= base and >= 1');
      return { t, sid: uint(raw, 'sid'), seq, base, payload: raw['payload'] ?? null };
    }
    case MessageType.ReliableAck:
      return { t, sid: uint(raw, 'sid'), upTo: uint(raw, 'upTo') };
    case MessageType.Conflict:
      return { t, node: str(raw, 'node'), addr: str(raw, 'addr') };
    case MessageType.Heard:
      return { t, node: str(raw, 'node'), inc: uint(raw, 'inc'), from: str(raw, 'from') };
    case MessageType.Direct:
      // The payload is the layer above's to check (frames bound its size).
      return { t, payload: raw['payload'] ?? null };
    default:
      throw new MessageError('GOSSIP_ERR_UNKNOWN_TYPE', `unknown message type ${typeof t === 'number' ? t : typeof t}`);
  }
}
