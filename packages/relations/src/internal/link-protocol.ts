/**
 * The link protocol's decisions, as pure functions of a link's record, the
 * committed relation state and a message: what to queue, what to resend,
 * what an ack releases, what to do with an incoming data message, which
 * buffered message is next, whether a sync offer calls for a pull. The
 * link's two sides execute them (link-sender.ts, link-receiver.ts, wired by
 * manager.ts): they stage records in runs, send messages, submit runs and
 * keep timers. Keeping the decisions here makes
 * the invariants below checkable without a network or an engine.
 *
 * Invariants (per link, one direction):
 *   - sequence numbers are assigned once, consecutively, within an epoch;
 *   - the outbox holds every unacknowledged message of the current epoch
 *     (and possibly some acknowledged since it was written: acks are kept in
 *     memory and trimmed at the next queueing, link-sender.ts), oldest
 *     first, at most `maxOutbox` of them (older ones are superseded: every
 *     message carries the whole bag);
 *   - `base` on the wire is the oldest seq still in the outbox, so every
 *     seq below it has been acknowledged (or superseded);
 *   - the receiver applies (epoch, seq) only if it is the next one after
 *     max(applied, base - 1) in the newest epoch it has seen; anything
 *     covered by its position is a duplicate or stale.
 */
import { covered } from './apply';
import type { LinkRecord } from '../link-store';
import type { SendRecord } from '../send-record';
import type { DataMessage, PullMessage, SyncMessage, Unstamped } from '../messages';
import { compareVersions, effectiveLocal, type EndpointState, type LinkReceiveState, type UnitView } from '../state';

export interface QueueInput {
  readonly relationId: string;
  /** This unit (the sender) and the remote unit. */
  readonly from: string;
  readonly to: string;
  /** Queue the current bag even if that version was queued already (a pull asked for it). */
  readonly force: boolean;
  readonly maxOutbox: number;
  /** The interface version this unit speaks now (the registered definition's), stamped on the message. */
  readonly ifaceVersion: string;
}

/**
 * Sender: the data message carrying the relation's committed effective bag
 * (endpoint-wide bag under the relation's overlay, state.ts) and, for
 * peers, the app bag held, with the record after queueing it; undefined
 * when the link already queued these versions.
 */
export function queueData(rec: SendRecord, state: EndpointState, q: QueueInput): { record: SendRecord; message: Unstamped<DataMessage> } | undefined {
  // Peers relay the application bag they hold, whoever wrote it, so every peer converges to the newest one
  // even if its writer (a former leader) is gone.
  const app = state.role === 'peers' ? state.app : undefined;
  const local = effectiveLocal(state, q.relationId) ?? state.local;
  const newerBag = local.version > rec.queuedVersion;
  const newerApp = app !== undefined && app.version > rec.queuedAppVersion;
  // A record from before versions were sent counts as the current version: no extra message on upgrade of the agent.
  const otherIface = (rec.queuedIfaceVersion ?? q.ifaceVersion) !== q.ifaceVersion;
  if (!newerBag && !newerApp && !otherIface && !q.force) return undefined;
  const seq = rec.nextSeq;
  // Keep room for this message; older ones beyond the bound are superseded by it.
  const kept = q.maxOutbox > 1 ? rec.outbox.slice(-(q.maxOutbox - 1)) : [];
  const message: Unstamped<DataMessage> = {
    type: 'data',
    rel: q.relationId,
    from: q.from,
    to: q.to,
    epoch: rec.epoch,
    seq,
    base: kept[0]?.seq ?? seq,
    inc: state.incarnation,
    version: local.version,
    bag: local.bag,
    ...(app ? { app: { bag: app.bag, version: app.version, writer: app.writer, inc: app.inc } } : {}),
    ifaceVersion: q.ifaceVersion,
  };
  const record: SendRecord = {
    ...rec,
    nextSeq: seq + 1,
    queuedVersion: Math.max(rec.queuedVersion, local.version),
    queuedAppVersion: app ? app.version : rec.queuedAppVersion,
    queuedIfaceVersion: q.ifaceVersion,
    outbox: [...kept, message],
  };
  return { record, message };
}

/**
 * Sender: what to (re)transmit now, the head of the outbox, with `base`
 * recomputed: what was acknowledged since a message was queued no longer
 * holds the receiver back.
 */
export function retransmission(rec: SendRecord, window: number): Unstamped<DataMessage>[] {
  const first = rec.outbox[0];
  if (!first) return [];
  return rec.outbox.slice(0, window).map((m) => (m.base === first.seq ? m : { ...m, base: first.seq }));
}

/** Sender: the record after an ack, or undefined when the ack is stale (another epoch) or releases nothing. */
export function acknowledge<R extends SendRecord>(rec: R, ack: { readonly epoch: number; readonly seq: number }): R | undefined {
  if (rec.epoch !== ack.epoch) return undefined;
  const outbox = rec.outbox.filter((x) => x.seq > ack.seq);
  return outbox.length === rec.outbox.length ? undefined : { ...rec, outbox };
}

/**
 * Sender: the answer to a pull. Unacknowledged messages are resent first
 * (they carry the newest bag queued); otherwise the current bag is sent if
 * the receiver is on another epoch, its view of the bag is older, or there
 * is a peers app bag it may lack.
 */
export function answerPull(rec: SendRecord, state: EndpointState, pull: PullMessage): 'retransmit' | 'send-current' | 'nothing' {
  if (rec.outbox.length > 0) return 'retransmit';
  if (pull.epoch !== rec.epoch) return 'send-current';
  // An empty outbox means the last message was acknowledged: a pull of this epoch that still expects it (or
  // earlier) was sent before that ack, and what it lacked has arrived since. (A receiver that lost its view
  // after the ack expects the next seq, and gets the current bag below.)
  if (pull.expect < rec.nextSeq) return 'nothing';
  const version = (effectiveLocal(state, pull.rel) ?? state.local).version;
  if (compareVersions(state.incarnation, version, pull.viewInc, pull.version) > 0) return 'send-current';
  if (state.role === 'peers' && state.app !== undefined) return 'send-current';
  return 'nothing';
}

export type Admission =
  /** Applied already (re-ack `ack`, if set) or from an older epoch (drop). */
  | { readonly kind: 'duplicate'; readonly ack?: number }
  /** The inbox is full: drop, the sender retransmits. */
  | { readonly kind: 'full' }
  /** Buffered (record is the new record, or undefined if nothing changed). */
  | { readonly kind: 'buffered'; readonly record: LinkRecord | undefined };

/** Receiver: what to do with an incoming data message, given the link's committed position. */
export function admit(rec: LinkRecord, pos: LinkReceiveState, m: DataMessage, maxInbox: number): Admission {
  if (covered(pos, m.epoch, m.seq)) {
    // A duplicate of something applied: re-ack, its ack may have been lost.
    // (From an older epoch of the link: drop, nobody waits for it.)
    return m.epoch === pos.epoch ? { kind: 'duplicate', ack: pos.applied } : { kind: 'duplicate' };
  }
  const held = rec.inbox.find((x) => x.epoch === m.epoch && x.seq === m.seq);
  if (held) {
    // A retransmission may know of more acknowledgements: keep the larger base.
    return { kind: 'buffered', record: m.base > held.base ? { ...rec, inbox: rec.inbox.map((x) => (x === held ? m : x)) } : undefined };
  }
  if (rec.inbox.length >= maxInbox) return { kind: 'full' };
  return { kind: 'buffered', record: { ...rec, inbox: [...rec.inbox, m].sort((a, b) => a.epoch - b.epoch || a.seq - b.seq) } };
}

/**
 * Receiver: the inbox without what is applied or superseded (messages of
 * older epochs), and the message to apply next, if it is there: the one
 * right after max(applied, base - 1) in the newest epoch. `base - 1`
 * outruns `applied` only if this unit lost its state (with durable stores
 * the sender never releases what was not applied and acknowledged).
 */
export function nextInOrder(inbox: readonly DataMessage[], pos: LinkReceiveState): { inbox: DataMessage[]; next: DataMessage | undefined } {
  const fresh = inbox.filter((x) => !covered(pos, x.epoch, x.seq));
  const newest = fresh.reduce((max, x) => Math.max(max, x.epoch), pos.epoch);
  const current = fresh.filter((x) => x.epoch === newest);
  if (current.length === 0) return { inbox: current, next: undefined };
  const applied = newest === pos.epoch ? pos.applied : 0;
  const floor = Math.max(applied, current.reduce((max, x) => Math.max(max, x.base), 0) - 1);
  const m = current.find((x) => x.seq > floor);
  return { inbox: current, next: m !== undefined && m.seq === floor + 1 ? m : undefined };
}

export interface PlausibilityBounds {
  /** The receiver's wall clock (ms), against which stamps (epochs, incarnations) are checked. */
  readonly now: number;
  /** How far ahead of `now` a stamp may be (clock skew between hosts). */
  readonly maxStampAheadMs: number;
  /** How far past what the receiver holds a counter may jump within one epoch or incarnation. */
  readonly maxCounterJump: number;
}

export const DEFAULT_PLAUSIBILITY = Object.freeze({
  // Hosts' clocks differ by far less under NTP; a day ahead is a broken clock or a forged frame.
  maxStampAheadMs: 24 * 3_600_000,
  // Four billion commits or messages the receiver never saw: not a real gap.
  maxCounterJump: 2 ** 32,
});

/**
 * Receiver: why a data message jumps implausibly far ahead (undefined: it
 * does not). A stamp beyond the receiver's clock plus skew, or a counter far
 * past the receiver's position in the same epoch (or view in the same
 * incarnation), is refused rather than adopted: views and positions only
 * move forward, so once adopted it would make every genuine later message
 * look stale.
 */
export function implausible(m: DataMessage, pos: LinkReceiveState, view: UnitView | undefined, appVersion: number, b: PlausibilityBounds): string | undefined {
  const limit = b.now + b.maxStampAheadMs;
  for (const [what, value] of [['link epoch', m.epoch], ['incarnation', m.inc], ['app bag incarnation', m.app?.inc ?? 0]] as const) {
    if (value > limit) return `${what} ${value} is ${value - b.now} ms ahead of this host's clock (at most ${b.maxStampAheadMs} ms allowed); check the sender's clock (NTP)`;
  }
  if (m.epoch === pos.epoch && m.seq - pos.applied > b.maxCounterJump) return `seq ${m.seq} jumps ${m.seq - pos.applied} past the last applied (${pos.applied}) in epoch ${m.epoch}`;
  if (m.epoch === pos.epoch && m.base - pos.applied > b.maxCounterJump) return `base ${m.base} jumps ${m.base - pos.applied} past the last applied (${pos.applied}) in epoch ${m.epoch}`;
  if (view && m.inc === view.incarnation && m.version - view.version > b.maxCounterJump) return `bag version ${m.version} jumps ${m.version - view.version} past the view's (${view.version})`;
  if (m.app && m.app.version - appVersion > b.maxCounterJump) return `app bag version ${m.app.version} jumps ${m.app.version - appVersion} past the one held (${appVersion})`;
  return undefined;
}

/**
 * Receiver: whether a sync offer shows that this unit's view of the sender's
 * bag (or of the peers' app bag) is older, with nothing newer already
 * buffered: then it pulls.
 */
export function shouldPull(view: UnitView, appVersion: number, pos: LinkReceiveState, inbox: readonly DataMessage[], sync: SyncMessage): boolean {
  const behind = compareVersions(view.incarnation, view.version, sync.inc, sync.version) < 0 || (sync.appVersion > 0 && appVersion < sync.appVersion);
  if (!behind) return false;
  const coming = inbox.some((x) => !covered(pos, x.epoch, x.seq) && compareVersions(x.inc, x.version, sync.inc, sync.version) >= 0);
  return !coming;
}
