/**
 * Push-pull anti-entropy (memberlist pushPullNode / mergeRemoteState, plus
 * Serf's reconnect).
 *
 * Periodically (pushPullInterval, scaled up above 32 members so the total
 * cost stays flat) a node sends its whole member table to one random live
 * member, which merges it and answers with its own. On join, the same
 * exchange with each seed bootstraps the joiner. Both sides also exchange
 * their user-event and query Lamport clocks; a joiner ignores every user
 * event older than what its seed had seen (no replay of old events).
 *
 * A partition heals by itself because, as in Serf's reconnect, each round
 * picks a *failed* member instead, with probability failed / live: news
 * that it is considered failed makes it refute, and its answer (taken after
 * the merge, so it carries the refutation) brings it back on our side.
 *
 * A full state is split into chunks of PUSH_PULL_CHUNK members; each chunk
 * merges on its own, and only the last one of a request asks for a reply.
 */
import type { TimerHandle } from './clock';
import type { NodeContext } from './context';
import type { MemberState } from './member';
import { MessageType, PUSH_PULL_CHUNK, type PushPullMsg } from './messages';
import { pushPullScale } from './options';
import { sample } from './prng';
import type { Membership } from './state';

export interface PushPullHooks {
  /** Our user-event and query Lamport times. */
  clocks(): { ev: number; qt: number };
  /** A peer's clocks arrived; `join` when it answers our join (old events must be ignored). */
  witness(ev: number, qt: number, join: boolean): void;
  /** A seed answered our join request. */
  joinAnswered(fromAddr: string): void;
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
  encode(join: boolean, reply: boolean, ans: boolean): PushPullMsg[] {
    const state = this.membership.localState();
    const { ev, qt } = this.hooks.clocks();
    const out: PushPullMsg[] = [];
    for (let i = 0; i < state.length; i += PUSH_PULL_CHUNK) {
      out.push({ t: MessageType.PushPull, join, reply: false, ans, members: state.slice(i, i + PUSH_PULL_CHUNK), ev, qt });
    }
    const last = out[out.length - 1];
    if (last) last.reply = reply;
    return out;
  }

  /** Start an exchange with `addr` (a seed when joining). */
  pushPullTo(addr: string, join: boolean): void {
    this.ctx.send(addr, this.encode(join, true, false));
  }

  handle(msg: PushPullMsg, fromName: string, fromAddr: string): void {
    // Witness clocks before merging; an answer to our join sets the no-replay horizon.
    this.hooks.witness(msg.ev, msg.qt, msg.join && msg.ans);
    this.membership.mergeRemoteState(msg.members, fromName);
    if (msg.reply) {
      // Answer after merging, so any refutation the merge caused is in our answer.
      this.ctx.send(fromAddr, this.encode(msg.join, false, true));
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
    if (this.membership.leaving) return;
    const list = this.membership.list;
    const local = this.membership.local;
    const failed = list.reduce((n, m) => n + (m.status === 'failed' ? 1 : 0), 0);
    let target: MemberState | undefined;
    // Serf-style reconnect: sometimes try a failed member, so partitions heal.
    if (failed > 0 && this.ctx.random() < failed / Math.max(1, live)) {
      target = sample(list, 1, this.ctx.random, (m) => m.status === 'failed')[0];
    }
    target ??= sample(list, 1, this.ctx.random, (m) => m !== local && m.status === 'alive')[0];
    if (target) this.pushPullTo(target.addr, false);
  }
}
