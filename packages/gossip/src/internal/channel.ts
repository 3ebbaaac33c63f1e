/**
 * Reliable, ordered point-to-point channel to a named member.
 *
 * Sender, per peer: messages get consecutive sequence numbers; up to
 * `reliableWindow` are in flight, the rest wait locally. Every data message
 * carries `base`, the lowest sequence number the sender still holds. All
 * unacked messages are resent every `reliableRetransmitInterval`; an ack
 * (cumulative: "everything up to n") resolves their promises and resets the
 * retry count. After `reliableMaxRetransmits` resends without progress, or
 * as soon as the member is declared failed or left, every pending message to
 * it is rejected with UnreachableError and an `unreachable` event fires:
 * callers learn, nothing hangs.
 *
 * Receiver, per (peer, sender session): delivers in sequence order exactly
 * once, buffering bounded out-of-order arrivals; duplicates are re-acked and
 * dropped. If `base` is past what it expects, the sender gave those messages
 * up (and told its caller), so the receiver skips ahead instead of waiting
 * forever. A sender restart is a new session id: numbering starts afresh.
 *
 * Guarantee while both sides live: at-least-once from the sender's view
 * (a lost ack may make a resolved promise late, never wrong), in-order and
 * deduplicated at the receiver. Exactly-once across crashes is the job of
 * the layer above (relations keep their own persisted sequence numbers).
 */
import type { TimerHandle } from '@rhizome/clock';
import type { NodeContext } from './context';
import { GossipError, UnreachableError, type UnreachableReason } from '../errors';
import type { MemberState } from '../member';
import { MessageType, type ReliableAckMsg, type ReliableMsg } from './messages';
import { encodedSize } from './size';

export interface ChannelHooks {
  lookup(name: string): MemberState | undefined;
  deliver(from: string, payload: unknown): void;
  unreachable(member: string, reason: UnreachableReason): void;
}

interface Pending {
  seq: number;
  payload: unknown;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface SendState {
  nextSeq: number;
  inflight: Pending[];
  waiting: Pending[];
  retries: number;
  timer: TimerHandle | null;
}

interface RecvState {
  sid: number;
  expected: number;
  buffer: Map<number, unknown>;
}

export class ReliableChannels {
  /** This node's session id: a restarted node numbers its messages afresh. */
  private readonly sid: number;
  private readonly out = new Map<string, SendState>();
  private readonly in = new Map<string, RecvState>();

  constructor(
    private readonly ctx: NodeContext,
    private readonly hooks: ChannelHooks,
  ) {
    this.sid = Math.floor(ctx.random() * 2 ** 32);
  }

  send(to: string, payload: unknown): Promise<void> {
    if (!this.ctx.running()) return Promise.reject(new UnreachableError(to, 'shutdown'));
    const m = this.hooks.lookup(to);
    if (!m || m.name === this.ctx.name) {
      return Promise.reject(
        new GossipError('GOSSIP_ERR_UNKNOWN_MEMBER', `no member named "${to}"${m ? ' (that is this node)' : ''}; wait for its member-join event`),
      );
    }
    if (m.status === 'failed' || m.status === 'left') return Promise.reject(new UnreachableError(to, m.status));
    const size = encodedSize(payload ?? null);
    if (size > this.ctx.profile.maxFrameSize - 512) {
      return Promise.reject(
        new GossipError(
          'GOSSIP_ERR_MESSAGE_TOO_LARGE',
          `reliable payload of ${size} bytes does not fit in a frame (maxFrameSize ${this.ctx.profile.maxFrameSize}); split it`,
        ),
      );
    }
    let st = this.out.get(to);
    if (!st) {
      st = { nextSeq: 1, inflight: [], waiting: [], retries: 0, timer: null };
      this.out.set(to, st);
    }
    const state = st;
    return new Promise<void>((resolve, reject) => {
      const p: Pending = { seq: state.nextSeq++, payload: payload ?? null, resolve, reject };
      if (state.inflight.length < this.ctx.profile.reliableWindow) {
        state.inflight.push(p);
        this.transmit(to, state, [p]);
      } else {
        state.waiting.push(p);
      }
    });
  }

  handleData(msg: ReliableMsg, from: string, fromAddr: string): void {
    let st = this.in.get(from);
    if (!st || st.sid !== msg.sid) {
      st = { sid: msg.sid, expected: msg.base, buffer: new Map() };
      this.in.set(from, st);
    }
    if (msg.base > st.expected) {
      // The sender gave up on everything below base (and told its callers): skip ahead.
      for (const k of st.buffer.keys()) if (k < msg.base) st.buffer.delete(k);
      st.expected = msg.base;
      this.drain(from, st);
    }
    if (msg.seq === st.expected) {
      st.expected++;
      this.hooks.deliver(from, msg.payload);
      this.drain(from, st);
    } else if (msg.seq > st.expected && msg.seq - st.expected < 2 * this.ctx.profile.reliableWindow) {
      st.buffer.set(msg.seq, msg.payload);
    }
    // Duplicates (seq < expected) and everything else: (re-)ack what we have.
    const ack: ReliableAckMsg = { t: MessageType.ReliableAck, sid: msg.sid, upTo: st.expected - 1 };
    this.ctx.send(fromAddr, [ack]);
  }

  handleAck(msg: ReliableAckMsg, from: string): void {
    if (msg.sid !== this.sid) return; // an ack for a previous life of ours
    const st = this.out.get(from);
    if (!st) return;
    let progressed = false;
    while (st.inflight.length > 0 && (st.inflight[0] as Pending).seq <= msg.upTo) {
      (st.inflight.shift() as Pending).resolve();
      progressed = true;
    }
    if (!progressed) return;
    st.retries = 0;
    const room = this.ctx.profile.reliableWindow - st.inflight.length;
    if (room > 0 && st.waiting.length > 0) {
      const next = st.waiting.splice(0, room);
      st.inflight.push(...next);
      this.transmit(from, st, next);
    }
    if (st.inflight.length === 0 && st.timer) {
      this.ctx.clock.clearTimeout(st.timer);
      st.timer = null;
    }
  }

  /** The member failed or left (or we are shutting down): reject everything pending to it. */
  peerDown(name: string, reason: UnreachableReason): void {
    const st = this.out.get(name);
    if (!st || (st.inflight.length === 0 && st.waiting.length === 0)) return;
    this.fail(name, st, reason);
  }

  /** Forget a reaped member's receive state. */
  forget(name: string): void {
    this.in.delete(name);
    const st = this.out.get(name);
    if (st && st.inflight.length === 0 && st.waiting.length === 0) this.out.delete(name);
  }

  shutdown(): void {
    for (const [name, st] of this.out) if (st.inflight.length > 0 || st.waiting.length > 0) this.fail(name, st, 'shutdown', false);
    this.out.clear();
    this.in.clear();
  }

  /** Messages waiting for an ack, over all peers. */
  pendingCount(): number {
    let n = 0;
    for (const st of this.out.values()) n += st.inflight.length + st.waiting.length;
    return n;
  }

  private drain(from: string, st: RecvState): void {
    for (;;) {
      if (!st.buffer.has(st.expected)) return;
      const payload = st.buffer.get(st.expected);
      st.buffer.delete(st.expected);
      st.expected++;
      this.hooks.deliver(from, payload);
    }
  }

  private transmit(to: string, st: SendState, items: Pending[]): void {
    const m = this.hooks.lookup(to);
    if (m && items.length > 0) {
      const base = (st.inflight[0] as Pending).seq;
      this.ctx.send(
        m.addr,
        items.map((p): ReliableMsg => ({ t: MessageType.Reliable, sid: this.sid, seq: p.seq, base, payload: p.payload })),
      );
    }
    if (!st.timer && st.inflight.length > 0) {
      st.timer = this.ctx.clock.setTimeout(() => this.retransmit(to, st), this.ctx.profile.reliableRetransmitInterval);
    }
  }

  private retransmit(to: string, st: SendState): void {
    st.timer = null;
    if (st.inflight.length === 0 || !this.ctx.running()) return;
    st.retries++;
    if (st.retries > this.ctx.profile.reliableMaxRetransmits) {
      this.fail(to, st, 'timeout');
      return;
    }
    this.transmit(to, st, st.inflight);
  }

  private fail(name: string, st: SendState, reason: UnreachableReason, notify = true): void {
    if (st.timer) this.ctx.clock.clearTimeout(st.timer);
    st.timer = null;
    const all = [...st.inflight, ...st.waiting];
    st.inflight = [];
    st.waiting = [];
    st.retries = 0;
    const err = new UnreachableError(name, reason);
    for (const p of all) p.reject(err);
    if (notify) this.hooks.unreachable(name, reason);
  }
}
