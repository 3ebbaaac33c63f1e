/**
 * Join relay (our addition): a seed tells its recent joiners about the
 * members that joined through it after them.
 *
 * A join answer carries the seed's state at that moment. When many members
 * join through one seed at once (a cluster booting, the benchmark's 50),
 * the early ones miss the later ones and learn of them only through gossip,
 * hop by hop, or at the next push-pull (Serf's stragglers wait up to a
 * whole push-pull interval). Yet the seed has seen every one of them and
 * holds a connection to each. So, during a burst of joins, the seed sends
 * each joiner the members that joined after it: one small push-pull chunk
 * (no reply asked) per joiner per flush, flushes at most `flushDelay`
 * apart, over connections that already exist.
 *
 * Cost: a burst of J joiners costs the seed about J²/2 member entries in
 * all, as much as answering their joins did (joiner k got the k members
 * before it; now it also gets the J - k after it). In exchange, the gossip
 * that would otherwise carry those members hop by hop, with its long tail,
 * is never needed: 1,000 simulated nodes joining one seed at once converged
 * in 0.5 gossip rounds with 7,600 frames in all, instead of 15 rounds and
 * 66,000 frames with the relay capped at 256 joiners.
 *
 * Bounded: a burst ends `burstQuiet` after its last join request, and
 * tracks at most MAX_JOINERS joiners and relays at most as many joined
 * members (later ones still get full answers, and gossip carries the rest).
 */
import type { TimerHandle } from '@rhizome/clock';
import type { NodeContext } from './context';
import { MessageType, PUSH_PULL_CHUNK, type PushPullMsg, type WireMember } from './messages';
import { toWireStatus } from '../member';
import type { Membership } from '../state';

/**
 * Joiners tracked per burst, and joined members relayed per burst (memory: a
 * few names and counters each, about 1.5 MB at the cap). Beyond it, gossip
 * carries the rest: at N = 2,000 joining one seed with a cap of 1,024, each
 * node then handled every alive broadcast about 9 times (35 million handlings
 * in all) and the join took 14 gossip rounds instead of 0.5; the relay's own
 * cost, about J²/2 member entries at the seed, is what answering the joins
 * costs anyway.
 */
export const MAX_JOINERS = 16_384;

interface Joiner {
  readonly name: string;
  readonly addr: string;
  /** Entries of `joined` this joiner knows of (its answer, or its last relay). */
  cursor: number;
}

export class JoinRelay {
  /** By name, in the order they joined. */
  private readonly joiners = new Map<string, Joiner>();
  /** Members that joined through us during this burst, in order. */
  private joined: string[] = [];
  private readonly joinedSet = new Set<string>();
  private flushTimer: TimerHandle | null = null;
  private endTimer: TimerHandle | null = null;

  constructor(
    private readonly ctx: NodeContext,
    private readonly membership: Membership,
    private readonly clocks: () => { ev: number; qt: number },
  ) {}

  /** Flushes wait this long so that a burst goes out in few frames. */
  private get flushDelay(): number {
    return this.ctx.profile.gossipInterval / 4;
  }

  /** A burst is over this long after its last join request. */
  private get burstQuiet(): number {
    return 4 * this.ctx.profile.gossipInterval;
  }

  /** We answered `name`'s join request (from `addr`), after merging its state. */
  answered(name: string, addr: string): void {
    if (!this.ctx.profile.joinRelay || name === this.ctx.name) return;
    if (!this.joinedSet.has(name) && this.joined.length < MAX_JOINERS) {
      this.joined.push(name);
      this.joinedSet.add(name);
      // Every joiner tracked so far is now behind by one (a retried request is caught up just below).
      if (this.joiners.size > 0) this.scheduleFlush();
    }
    const known = this.joiners.get(name);
    if (known) known.cursor = this.joined.length; // a retried join request: its new answer covers everything
    else if (this.joiners.size < MAX_JOINERS) this.joiners.set(name, { name, addr, cursor: this.joined.length });
    if (this.endTimer) this.ctx.clock.clearTimeout(this.endTimer);
    this.endTimer = this.ctx.clock.setTimeout(() => this.endBurst(), this.burstQuiet);
  }

  stop(): void {
    this.endBurst();
  }

  private scheduleFlush(): void {
    this.flushTimer ??= this.ctx.clock.setTimeout(() => {
      this.flushTimer = null;
      this.flush();
    }, this.flushDelay);
  }

  private flush(): void {
    if (!this.ctx.running()) return;
    const { ev, qt } = this.clocks();
    const total = this.joined.length;
    // The joined members as we see them now; departed ones are left out (their departure travels by its own broadcast).
    const entries = this.joined.map((name): WireMember | null => {
      const m = this.membership.get(name);
      return m && (m.status === 'alive' || m.status === 'suspect') ? { n: m.name, a: m.addr, i: m.inc, s: toWireStatus(m.status), g: m.tags } : null;
    });
    const chunk = (from: number, to: number): PushPullMsg | undefined => {
      const members = entries.slice(from, to).filter((e): e is WireMember => e !== null);
      return members.length > 0 ? { t: MessageType.PushPull, join: false, reply: false, ans: false, members, ev, qt, seen: null } : undefined;
    };
    // Aligned chunks are the same for every joiner whose cursor precedes them: built (and encoded) once per flush.
    const shared = new Map<number, PushPullMsg | undefined>();
    for (const j of this.joiners.values()) {
      if (j.cursor >= total) continue;
      const self = this.membership.get(j.name);
      if (!self || self.addr !== j.addr || (self.status !== 'alive' && self.status !== 'suspect')) {
        j.cursor = total; // it left, failed or moved since: nothing to tell it there
        continue;
      }
      const msgs: PushPullMsg[] = [];
      let i = j.cursor;
      const aligned = Math.min(total, Math.ceil(i / PUSH_PULL_CHUNK) * PUSH_PULL_CHUNK);
      const head = aligned > i ? chunk(i, aligned) : undefined;
      if (head) msgs.push(head);
      const sharedFrom = msgs.length;
      for (i = aligned; i < total; i += PUSH_PULL_CHUNK) {
        if (!shared.has(i)) shared.set(i, chunk(i, Math.min(total, i + PUSH_PULL_CHUNK)));
        const m = shared.get(i);
        if (m) msgs.push(m);
      }
      j.cursor = total;
      // The joiner's own entry precedes its cursor (it joined, then was answered), so nobody is told about itself.
      if (msgs.length > 0) this.ctx.send(j.addr, msgs, false, sharedFrom);
    }
  }

  private endBurst(): void {
    if (this.flushTimer) {
      this.ctx.clock.clearTimeout(this.flushTimer);
      this.flush();
    }
    if (this.endTimer) this.ctx.clock.clearTimeout(this.endTimer);
    this.flushTimer = this.endTimer = null;
    this.joiners.clear();
    this.joined = [];
    this.joinedSet.clear();
  }
}
