/**
 * Push-pull anti-entropy (memberlist pushPullNode / mergeRemoteState, plus
 * Serf's reconnect).
 *
 * Periodically (pushPullInterval, scaled up above 32 members so the total
 * cost stays flat) a node sends its whole member table to one random live
 * member, which merges it and answers with its own. On join, the same
 * exchange with each seed bootstraps the joiner. Both sides also exchange
 * their user-event and query Lamport clocks, and a seed's join answer lists
 * digests of the user events it has seen, which the joiner marks as seen
 * (no replay of old events).
 *
 * A partition heals by itself because, as in Serf's reconnect, each round
 * picks a *failed* member instead, with probability failed / live: news
 * that it is considered failed makes it refute, and its answer (taken after
 * the merge, so it carries the refutation) brings it back on our side.
 *
 * Recent user events ride along (Serf does the same), so an event that a
 * member missed through loss or a partition still reaches it.
 *
 * A full state is split into chunks of PUSH_PULL_CHUNK members; each chunk
 * merges on its own, and only the last one of a request asks for a reply.
 */
import type { TimerHandle } from '@rhizome/clock';
import type { NodeContext } from './context';
import { MAX_EVENT_DIGESTS, MessageType, PUSH_PULL_CHUNK, type EventDigest, type Message, type PushPullMsg } from './messages';
import { pushPullScale } from '../options';
import { sample } from '../prng';
import type { Membership } from '../state';

export interface PushPullHooks {
  /** Our user-event and query Lamport times. */
  clocks(): { ev: number; qt: number };
  /** Recent user events to carry along (anti-entropy); not sent in join answers, which would be ignored. */
  recentEvents(): Message[];
  /** A peer's clocks arrived. */
  witness(ev: number, qt: number): void;
  /** Whether a peer's clocks may be adopted (bounds.ts); `joinAnswer` for the answer to our join. */
  plausibleClocks(ev: number, qt: number, joinAnswer: boolean): boolean;
  /** Digests of the user events we have seen (sent in join answers). */
  eventDigests(): EventDigest[];
  /** The seed's seen events, from its join answer: never deliver these. */
  markSeen(digests: readonly EventDigest[], upTo: number): void;
  /** A seed answered our join request. */
  joinAnswered(fromAddr: string): void;
  /** We answered a join request (we are its seed). */
  answeredJoin(fromName: string, fromAddr: string): void;
}

export class PushPull {
  private timer: TimerHandle | null = null;

  constructor(
    private readonly ctx: NodeContext,
    private readonly membership: Membership,
    private readonly hooks: PushPullHooks,
  ) {}

  start(): void {
    const interval = this.ctx.profile.pushPullInterval;
    if (interval === 0) return;
    // Random stagger so a cluster started at once does not sync in lockstep.
    this.timer = this.ctx.clock.setTimeout(() => this.tick(), this.ctx.random() * interval);
  }

  stop(): void {
    if (this.timer) this.ctx.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  /** Our whole state as push-pull messages; the last one asks for a reply when `reply`. */
  encode(join: boolean, reply: boolean, ans: boolean): Message[] {
    const state = this.membership.localState();
    const { ev, qt } = this.hooks.clocks();
    const out: PushPullMsg[] = [];
    for (let i = 0; i < state.length; i += PUSH_PULL_CHUNK) {
      out.push({ t: MessageType.PushPull, join, reply: false, ans, members: state.slice(i, i + PUSH_PULL_CHUNK), ev, qt, seen: null });
    }
    const first = out[0];
    if (first && join && ans) first.seen = this.hooks.eventDigests().slice(-MAX_EVENT_DIGESTS);
    const last = out[out.length - 1];
    if (last) last.reply = reply;
    // Events first, so that the answer (triggered by the last state chunk) comes after they were handled.
    return join ? out : [...this.hooks.recentEvents(), ...out];
  }

  /** Start an exchange with `addr` (a seed when joining). */
  pushPullTo(addr: string, join: boolean): void {
    this.ctx.send(addr, this.encode(join, true, false));
  }

  handle(msg: PushPullMsg, fromName: string, fromAddr: string): void {
    // Clocks implausibly far ahead (bounds.ts): no member sends them; refuse the whole exchange.
    if (!this.hooks.plausibleClocks(msg.ev, msg.qt, msg.join && msg.ans)) {
      this.ctx.implausible(`push-pull from ${fromName} with Lamport clocks ${msg.ev}/${msg.qt}`);
      return;
    }
    this.hooks.witness(msg.ev, msg.qt);
    // An answer to our join: the seed's event history is not ours to replay.
    if (msg.join && msg.ans && msg.seen) this.hooks.markSeen(msg.seen, msg.ev);
    this.membership.mergeRemoteState(msg.members, fromName);
    if (msg.reply) {
      // Answer after merging, so any refutation the merge caused is in our answer.
      this.ctx.send(fromAddr, this.encode(msg.join, false, true));
      if (msg.join) this.hooks.answeredJoin(fromName, fromAddr);
    }
    if (msg.join && msg.ans) {
      this.hooks.joinAnswered(fromAddr);
    }
  }

  private tick(): void {
    if (!this.ctx.running()) return;
    const p = this.ctx.profile;
    const live = this.membership.numLive();
    this.timer = this.ctx.clock.setTimeout(() => this.tick(), pushPullScale(p.pushPullInterval, live));
    this.syncRandom();
  }

  /** One exchange with a random live member (sometimes a failed one: reconnect). */
  syncRandom(): void {
    if (this.membership.leaving || !this.ctx.running()) return;
    const live = this.membership.numLive();
    const ms = this.membership;
    let failed = 0;
    for (let i = 0; i < ms.size; i++) if (ms.statusOf(ms.order[i] as number) === 'failed') failed++;
    let target: number | undefined;
    // Serf-style reconnect: sometimes try a failed member, so partitions heal.
    if (failed > 0 && this.ctx.random() < failed / Math.max(1, live)) {
      target = sample(ms.order, 1, this.ctx.random, (id) => ms.statusOf(id) === 'failed', ms.size)[0];
    }
    target ??= sample(ms.order, 1, this.ctx.random, (id) => id !== ms.localIdNumber && ms.statusOf(id) === 'alive', ms.size)[0];
    if (target !== undefined) this.pushPullTo(ms.addrOf(target), false);
  }
}
