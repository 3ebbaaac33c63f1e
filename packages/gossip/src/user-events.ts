/**
 * User events (Serf's UserEvent / handleUserEvent).
 *
 * `send` stamps the event with the next Lamport time, delivers it locally and
 * queues it for gossip; every node that receives it for the first time
 * delivers it once and gossips it on (retransmit-limited like membership
 * news). Dedupe is by (Lamport time, name, encoded payload) in a ring of
 * `eventBufferSize` slots indexed by time; anything older than the ring is
 * dropped, so memory is bounded and old events never resurface. A node that
 * joins takes its seed's event time as its minimum: events sent before it
 * joined are never replayed to it.
 *
 * Coalescing: events sent with `coalesce` are held per name for
 * `eventCoalescePeriod` and only the newest (highest Lamport time) is
 * delivered, for "latest config wins" style notifications.
 */
import { BroadcastQueue } from './broadcast-queue';
import type { TimerHandle } from './clock';
import type { NodeContext } from './context';
import { GossipError } from './errors';
import { LamportClock } from './lamport';
import { MessageType, type UserEventMsg } from './messages';
import { retransmitLimit } from './options';
import { bytesEqual, encodedBytes } from './size';

export interface UserEvent {
  readonly name: string;
  readonly payload: unknown;
  /** Lamport time: events from one sender are ordered by it. */
  readonly ltime: number;
  readonly coalesce: boolean;
}

interface Slot {
  ltime: number;
  seen: { name: string; bytes: Uint8Array }[];
}

export class UserEvents {
  readonly clock = new LamportClock();
  readonly queue: BroadcastQueue;
  private minTime = 0;
  private readonly ring: (Slot | undefined)[];
  private readonly coalescing = new Map<string, { ev: UserEvent; timer: TimerHandle }>();

  constructor(
    private readonly ctx: NodeContext,
    private readonly deliver: (ev: UserEvent) => void,
  ) {
    this.ring = new Array<Slot | undefined>(ctx.profile.eventBufferSize);
    this.queue = new BroadcastQueue(() => retransmitLimit(ctx.profile.retransmitMult, ctx.numMembers()));
  }

  send(name: string, payload: unknown, coalesce: boolean): UserEvent {
    if (typeof name !== 'string' || name.length === 0 || name.length > 128) {
      throw new TypeError('sendEvent: name must be a string of 1..128 characters');
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

  /** Set the no-replay horizon after a join: events before `t` are ignored. */
  ignoreBefore(t: number): void {
    if (t > this.minTime) this.minTime = t;
  }

  /** Handle an event from the wire (or our own); returns whether it was new. */
  handle(msg: UserEventMsg, size?: number): boolean {
    this.clock.witness(msg.lt);
    // Ignore if it is before our minimum event time (sent before we joined).
    if (msg.lt < this.minTime) return false;
    // Ignore if it is older than the dedupe ring can remember.
    const cur = this.clock.time();
    const n = this.ring.length;
    if (cur > n && msg.lt < cur - n) return false;
    const bytes = encodedBytes(msg.payload);
    const idx = msg.lt % n;
    let slot = this.ring[idx];
    if (slot && slot.ltime === msg.lt) {
      for (const s of slot.seen) if (s.name === msg.name && bytesEqual(s.bytes, bytes)) return false;
    } else {
      slot = { ltime: msg.lt, seen: [] };
      this.ring[idx] = slot;
    }
    slot.seen.push({ name: msg.name, bytes });
    this.queue.queue({ key: null, msg, size: size ?? bytes.length + msg.name.length + 16 });
    const ev: UserEvent = Object.freeze({ name: msg.name, payload: msg.payload, ltime: msg.lt, coalesce: msg.cc });
    if (msg.cc) this.coalesce(ev);
    else this.deliver(ev);
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
