/**
 * User events (Serf's UserEvent / handleUserEvent).
 *
 * `send` stamps the event with the next Lamport time, delivers it locally and
 * queues it for gossip; every node that receives it for the first time
 * delivers it once and gossips it on (retransmit-limited like membership
 * news). Dedupe is by (Lamport time, name, encoded payload) in a ring of
 * `eventBufferSize` slots indexed by time; anything older than the ring is
 * dropped, so memory is bounded and old events never resurface. A node that
 * joins receives, in its seed's answer, digests of every event the seed has
 * seen and marks them seen without delivering them: events from before it
 * joined are never replayed to it (push-pull anti-entropy included), while
 * new events from members with lagging Lamport clocks still are delivered
 * (Serf's "minimum event time" would drop those).
 *
 * Coalescing: events sent with `coalesce` are held per name for
 * `eventCoalescePeriod` and only the newest (highest Lamport time) is
 * delivered, for "latest config wins" style notifications.
 */
import { plausibleLamport } from './bounds';
import { BroadcastQueue } from './internal/broadcast-queue';
import { MAX_PAYLOAD_DEPTH, nestsDeeperThan } from './internal/codec';
import type { TimerHandle } from '@rhizome/clock';
import type { NodeContext } from './internal/context';
import { GossipError } from './errors';
import { LamportClock } from './internal/lamport';
import { MessageType, type EventDigest, type UserEventMsg } from './internal/messages';
import { retransmitLimit } from './options';
import { encodedBytes, fnv1a } from './internal/size';

export interface UserEvent {
  readonly name: string;
  readonly payload: unknown;
  /** Lamport time: events from one sender are ordered by it. */
  readonly ltime: number;
  readonly coalesce: boolean;
}

interface Slot {
  ltime: number;
  /** `msg` is null for events only known by digest (marked seen at join). */
  seen: { name: string; hash: number; msg: UserEventMsg | null }[];
}

export class UserEvents {
  readonly clock = new LamportClock();
  readonly queue: BroadcastQueue;
  private readonly ring: (Slot | undefined)[];
  private readonly coalescing = new Map<string, { ev: UserEvent; timer: TimerHandle }>();

  constructor(
    private readonly ctx: NodeContext,
    private readonly deliver: (ev: UserEvent) => void,
  ) {
    this.ring = new Array<Slot | undefined>(ctx.profile.eventBufferSize);
    this.queue = new BroadcastQueue(() => retransmitLimit(ctx.profile.retransmitMult, ctx.numMembers()), 4096, () => ctx.gossipSoon());
  }

  send(name: string, payload: unknown, coalesce: boolean): UserEvent {
    if (typeof name !== 'string' || name.length === 0 || name.length > 128) {
      throw new TypeError('sendEvent: name must be a string of 1..128 characters');
    }
    if (nestsDeeperThan(payload, MAX_PAYLOAD_DEPTH)) {
      throw new GossipError(
        'GOSSIP_ERR_PAYLOAD_TOO_DEEP',
        `user event "${name}" payload nests deeper than ${MAX_PAYLOAD_DEPTH} levels of arrays/objects (MAX_PAYLOAD_DEPTH); flatten it`,
      );
    }
    const msg: UserEventMsg = { t: MessageType.UserEvent, lt: this.clock.time(), name, payload: payload ?? null, cc: coalesce };
    const bytes = encodedBytes(msg);
    const limit = this.ctx.profile.userEventSizeLimit;
    if (bytes.length > limit) {
      throw new GossipError(
        'GOSSIP_ERR_EVENT_TOO_LARGE',
        `user event "${name}" encodes to ${bytes.length} bytes, above userEventSizeLimit ${limit}; send a smaller payload (e.g. a key to fetch) or raise the limit on every node`,
      );
    }
    this.clock.increment();
    this.handle(msg, bytes.length);
    return { name, payload: msg.payload, ltime: msg.lt, coalesce };
  }

  /**
   * Recent events (newest Lamport times first, at most `limit`), which
   * push-pull carries so that members that missed one (loss, partition) still
   * get it: anti-entropy, as in Serf.
   */
  recent(limit: number): UserEventMsg[] {
    const slots = this.ring.filter((s): s is Slot => s !== undefined).sort((a, b) => b.ltime - a.ltime);
    const out: UserEventMsg[] = [];
    for (const s of slots) {
      for (const e of s.seen) {
        if (out.length >= limit) return out;
        if (e.msg) out.push(e.msg);
      }
    }
    return out;
  }

  /** Handle an event from the wire (or our own); returns whether it was new. */
  handle(msg: UserEventMsg, size?: number): boolean {
    // Refuse implausibly new times (bounds.ts): adopting one could push our clock beyond encoding.
    if (!plausibleLamport(msg.lt, this.clock.time())) {
      this.ctx.implausible(`user event ${JSON.stringify(msg.name.slice(0, 64))} at Lamport time ${msg.lt}`);
      return false;
    }
    this.clock.witness(msg.lt);
    // Ignore if it is older than the dedupe ring can remember.
    const cur = this.clock.time();
    const n = this.ring.length;
    if (cur > n && msg.lt < cur - n) return false;
    const bytes = encodedBytes(msg.payload);
    const hash = fnv1a(bytes);
    if (!this.remember(msg.lt, msg.name, hash, msg)) return false;
    this.queue.queue({ key: null, msg, size: size ?? bytes.length + msg.name.length + 16 });
    const ev: UserEvent = Object.freeze({ name: msg.name, payload: msg.payload, ltime: msg.lt, coalesce: msg.cc });
    if (msg.cc) this.coalesce(ev);
    else this.deliver(ev);
    return true;
  }

  /** Digests of every event in the dedupe ring (for a join answer). */
  digests(): EventDigest[] {
    const out: EventDigest[] = [];
    for (const slot of this.ring) if (slot) for (const s of slot.seen) out.push([slot.ltime, s.name, s.hash]);
    return out;
  }

  /** Mark events as already seen without delivering them (the seed's history, at join). */
  markSeen(digests: readonly EventDigest[], upTo: number): void {
    // Only times the seed's own clock covers: a digest from the future would occupy a ring slot and hide real events.
    for (const [lt, name, hash] of digests) if (lt <= upTo) this.remember(lt, name, hash, null);
  }

  /** Record (lt, name, hash) in the ring; false if it was there already. */
  private remember(lt: number, name: string, hash: number, msg: UserEventMsg | null): boolean {
    const idx = lt % this.ring.length;
    let slot = this.ring[idx];
    if (slot && slot.ltime === lt) {
      for (const s of slot.seen) if (s.name === name && s.hash === hash) return false;
    } else {
      if (slot && slot.ltime > lt) return false; // the slot holds a newer time: this one is too old to track
      slot = { ltime: lt, seen: [] };
      this.ring[idx] = slot;
    }
    slot.seen.push({ name, hash, msg });
    return true;
  }

  shutdown(): void {
    for (const c of this.coalescing.values()) this.ctx.clock.clearTimeout(c.timer);
    this.coalescing.clear();
    this.queue.reset();
  }

  private coalesce(ev: UserEvent): void {
    const pending = this.coalescing.get(ev.name);
    if (pending) {
      if (ev.ltime > pending.ev.ltime) pending.ev = ev;
      return;
    }
    const timer = this.ctx.clock.setTimeout(() => {
      const p = this.coalescing.get(ev.name);
      this.coalescing.delete(ev.name);
      if (p && this.ctx.running()) this.deliver(p.ev);
    }, this.ctx.profile.eventCoalescePeriod);
    this.coalescing.set(ev.name, { ev, timer });
  }
}
