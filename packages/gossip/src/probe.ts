/**
 * SWIM failure detection: probing (memberlist state.go probe/probeNode and
 * net.go ping handlers).
 *
 * Every probe interval (× the Lifeguard health multiplier) we ping the next
 * member of a shuffled round-robin list. If no ack arrives within the probe
 * timeout, `indirectChecks` random live members are asked to ping it for us
 * (and, with Lifeguard, to send a nack if they cannot reach it either, so we
 * can tell "the target is down" from "we are the slow one"). If no ack has
 * arrived by the end of the probe interval, we suspect the target.
 *
 * Buddy system: a ping to a member we already suspect carries the suspect
 * message, so the suspect hears it first and can refute.
 *
 * Starved of CPU (a mass join on a small machine): a timer that fires late
 * runs in the event loop's timers phase, before the poll phase that reads
 * what arrived on the sockets meanwhile, so an ack could be sitting unread
 * when its deadline fires. Both probe deadlines (ask helpers, suspect)
 * therefore decide one loop turn later (a 0 ms timer, after that poll
 * phase): a late ack from a live member is never mistaken for silence, so
 * a slow *observer* neither suspects the member nor counts missing nacks
 * against itself. (Under virtual time this only reorders same-instant
 * events.)
 *
 * Invariants: at most one probe runs at a time; every ack handler is removed
 * by its own timeout, so pending state is bounded by (1 + indirectChecks)
 * handlers per probe plus one per indirect request we serve.
 */
import type { TimerHandle } from '@rhizome/clock';
import type { NodeContext } from './internal/context';
import type { MemberState } from './member';
import type { AckMsg, IndirectPingMsg, NackMsg, PingMsg } from './internal/messages';
import { MessageType } from './internal/messages';
import { sample, shuffle } from './prng';
import type { Membership } from './state';

interface AckHandler {
  onAck: () => void;
  onNack: () => void;
  timer: TimerHandle;
}

export class Prober {
  private seq = 0;
  private readonly handlers = new Map<number, AckHandler>();
  private index = 0;
  private timer: TimerHandle | null = null;
  private stopped = false;
  /** Members pinged out of band recently (accelerated confirmation), by name → time. */
  private readonly recentDirect = new Map<string, number>();

  constructor(
    private readonly ctx: NodeContext,
    private readonly membership: Membership,
  ) {}

  start(): void {
    this.stopped = false;
    const first = this.ctx.random() * this.ctx.profile.probeInterval;
    this.timer = this.ctx.clock.setTimeout(() => this.tick(), first);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.ctx.clock.clearTimeout(this.timer);
    this.timer = null;
    for (const h of this.handlers.values()) this.ctx.clock.clearTimeout(h.timer);
    this.handlers.clear();
  }

  private tick(): void {
    if (this.stopped) return;
    const interval = this.ctx.profile.lifeguard
      ? this.ctx.awareness.scaleTimeout(this.ctx.profile.probeInterval)
      : this.ctx.profile.probeInterval;
    this.timer = this.ctx.clock.setTimeout(() => this.tick(), interval);
    if (this.membership.leaving) return;
    const target = this.nextTarget();
    if (target) this.probeNode(target, interval);
  }

  /**
   * Round-robin over the member list; at the end of each pass the list is
   * shuffled in place, as memberlist does (no per-node copy: at N = 10,000
   * copies cost 800 MB across a simulated cluster). Members inserted
   * meanwhile land at random positions. Skips self, failed and left.
   */
  private nextTarget(): MemberState | undefined {
    const ms = this.membership;
    for (let checked = 0; checked <= ms.size; checked++) {
      if (this.index >= ms.size) {
        shuffle(ms.order, this.ctx.random, ms.size);
        this.index = 0;
        if (ms.size === 0) return undefined;
      }
      // Reaped members leave the order at once (the index may skip one then, as with a splice).
      const id = ms.order[this.index++] as number;
      if (id === ms.localIdNumber || !ms.isLive(id)) continue;
      return ms.ref(id);
    }
    return undefined;
  }

  private probeNode(target: MemberState, interval: number): void {
    const ctx = this.ctx;
    const p = ctx.profile;
    const seq = this.nextSeq();
    const ping: PingMsg = { t: MessageType.Ping, seq, target: target.name };
    const incAtStart = target.inc;
    let acked = false;
    let nacks = 0;
    let expectedNacks = 0;
    const done = (): void => {
      acked = true;
    };
    this.register(seq, interval, done, () => nacks++);
    // Buddy system: a suspect hears the accusation along with the ping.
    if (target.status === 'suspect') {
      ctx.send(target.addr, [ping, { t: MessageType.Suspect, node: target.name, inc: target.inc, from: ctx.name, ev: false }], true);
    } else {
      ctx.send(target.addr, [ping], true);
    }
    this.deadline(p.probeTimeout, () => {
      if (this.stopped || acked) return;
      // Direct ping timed out: ask others to try (indirect probes), with nacks under Lifeguard.
      const ms = this.membership;
      const helpers = sample(ms.order, p.indirectChecks, ctx.random, (id) => id !== ms.localIdNumber && id !== target.id && ms.statusOf(id) === 'alive', ms.size);
      const nack = p.lifeguard;
      for (const h of helpers) {
        const req: IndirectPingMsg = { t: MessageType.IndirectPing, seq, target: target.name, targetAddr: target.addr, nack };
        ctx.send(ms.addrOf(h), [req]);
      }
      if (nack) expectedNacks = helpers.length;
    });
    this.deadline(interval, () => {
      if (this.stopped) return;
      if (acked) {
        if (p.lifeguard) ctx.awareness.applyDelta(-1);
        return;
      }
      // Lifeguard: missing nacks mean our own connectivity (or speed) is the problem.
      if (p.lifeguard && expectedNacks > 0) ctx.awareness.applyDelta(Math.max(0, expectedNacks - nacks));
      if (this.membership.leaving) return;
      if (target.status !== 'alive' && target.status !== 'suspect') return;
      this.membership.suspectNode({ t: MessageType.Suspect, node: target.name, inc: Math.max(incAtStart, target.inc), from: ctx.name, ev: false });
    });
  }

  /** Run `fn` after `ms`, then one more event-loop turn, so frames that arrived meanwhile are read first (see the header). */
  private deadline(ms: number, fn: () => void): void {
    this.ctx.clock.setTimeout(() => {
      if (!this.stopped) this.ctx.clock.setTimeout(fn, 0);
    }, ms);
  }

  /**
   * Ping a member once outside the probe cycle (at most once per probe
   * interval per member). Used when someone else suspects it: if its host
   * refuses us too, the stream evidence becomes our independent confirmation.
   */
  pingOnce(target: MemberState): void {
    const now = this.ctx.clock.now();
    const last = this.recentDirect.get(target.name);
    if (last !== undefined && now - last < this.ctx.profile.probeInterval) return;
    this.recentDirect.set(target.name, now);
    if (this.recentDirect.size > 1024) {
      for (const [k, t] of this.recentDirect) if (now - t >= this.ctx.profile.probeInterval) this.recentDirect.delete(k);
    }
    const seq = this.nextSeq();
    this.register(seq, this.ctx.profile.probeTimeout, () => {}, () => {});
    this.ctx.send(target.addr, [{ t: MessageType.Ping, seq, target: target.name }]);
  }

  handlePing(msg: PingMsg, fromAddr: string): void {
    // Ignore pings meant for another node (e.g. a stale address now reused).
    if (msg.target !== this.ctx.name) return;
    const ack: AckMsg = { t: MessageType.Ack, seq: msg.seq };
    this.ctx.send(fromAddr, [ack], true);
  }

  handleIndirectPing(msg: IndirectPingMsg, fromAddr: string): void {
    const ctx = this.ctx;
    const seq = this.nextSeq();
    let answered = false;
    this.register(
      seq,
      ctx.profile.probeTimeout,
      () => {
        answered = true;
        ctx.send(fromAddr, [{ t: MessageType.Ack, seq: msg.seq }]);
      },
      () => {},
    );
    ctx.send(msg.targetAddr, [{ t: MessageType.Ping, seq, target: msg.target }]);
    if (msg.nack) {
      ctx.clock.setTimeout(() => {
        if (!answered && !this.stopped) ctx.send(fromAddr, [{ t: MessageType.Nack, seq: msg.seq } satisfies NackMsg]);
      }, ctx.profile.probeTimeout);
    }
  }

  handleAck(msg: AckMsg): void {
    const h = this.handlers.get(msg.seq);
    if (!h) return;
    this.handlers.delete(msg.seq);
    this.ctx.clock.clearTimeout(h.timer);
    h.onAck();
  }

  handleNack(msg: NackMsg): void {
    this.handlers.get(msg.seq)?.onNack();
  }

  private register(seq: number, timeout: number, onAck: () => void, onNack: () => void): void {
    // Removed one loop turn after the timeout, like the deadlines: a late ack read in that turn still counts.
    const h: AckHandler = { onAck, onNack, timer: null as unknown as TimerHandle };
    h.timer = this.ctx.clock.setTimeout(() => {
      h.timer = this.ctx.clock.setTimeout(() => {
        if (this.handlers.get(seq) === h) this.handlers.delete(seq);
      }, 0);
    }, timeout);
    this.handlers.set(seq, h);
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) % Number.MAX_SAFE_INTEGER;
    return this.seq;
  }
}
