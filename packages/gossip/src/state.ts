/**
 * Membership state and its rules (memberlist state.go: aliveNode,
 * suspectNode, deadNode, refute, mergeState).
 *
 * Every member has an incarnation number that only the member itself
 * increases. News about a member is ordered by (incarnation, status):
 * - alive(inc) overrides anything with a strictly lower incarnation;
 * - suspect(inc) overrides alive(inc' <= inc);
 * - failed/left(inc) override alive and suspect with inc' <= inc.
 * Only the member itself may refute: on hearing it is suspected or dead at
 * incarnation i it broadcasts alive(i + 1). Lifeguard makes the suspicion
 * timer start long and shrink with independent confirmations (suspicion.ts).
 *
 * Extra rules of ours:
 * - A graceful leave is dead(from = the member itself) and shows as `left`.
 *   `left` is final for that incarnation: later suspicion or failure news
 *   about the same incarnation is ignored, and a leave that arrives after a
 *   `failed` verdict upgrades it to `left`, so a leave never ends as failed.
 * - A member in `failed`/`left` may come back at a new address (a restart);
 *   an alive member's name claimed from another address is a conflict,
 *   reported, never merged.
 * - Slow is not dead (with Lifeguard): a frame from a suspect during its
 *   suspicion proves its process runs; the receiver gossips a `heard`
 *   witness. A suspicion timer that expires while the member showed such a
 *   sign of life within the last `max` (this suspicion or a recent one: a
 *   member known to be slow) waits another `min`, never beyond `max` in
 *   total. A hung host that was never slow sends nothing and meets the
 *   normal timers; a dead process meets stream evidence first.
 * - Tombstones (failed/left) are kept for reapTimeout/tombstoneTimeout, then
 *   removed with member-reap; memory stays bounded by the live membership.
 */
import { plausibleIncarnation } from './bounds';
import type { NodeContext } from './internal/context';
import type { AliveMsg, DeadMsg, HeardMsg, Message, SuspectMsg, Tags, WireMember } from './internal/messages';
import { MessageType, WireStatus } from './internal/messages';
import { snapshot, tagsEqual, toWireStatus, type Member, type MemberState } from './member';
import { suspicionTimeout } from './options';
import { Suspicion } from './suspicion';

export type MembershipEvent = 'member-join' | 'member-update' | 'member-leave' | 'member-failed' | 'member-reap' | 'member-suspect';

export interface MembershipHooks {
  emit(event: MembershipEvent, member: Member): void;
  /** Queue news about `key` (a member name) for gossip. */
  broadcast(key: string, msg: Message, onDone?: () => void): void;
  /** A member name is claimed from a second address while its owner is alive. */
  conflict(existing: MemberState, claimedAddr: string): void;
}

export class Membership {
  readonly local: MemberState;
  private readonly byName = new Map<string, MemberState>();
  private readonly byAddr = new Map<string, MemberState>();
  /** All members, self included, in random order (new members inserted at random positions). */
  readonly list: MemberState[] = [];
  private readonly suspicions = new Map<string, Suspicion>();
  /** Signs of life from members while they were suspect (slow, not dead): name → last time. Kept across refutations. */
  private readonly heardAt = new Map<string, number>();
  private live = 0;
  leaving = false;

  constructor(
    private readonly ctx: NodeContext,
    private readonly hooks: MembershipHooks,
    tags: Tags,
  ) {
    this.local = { name: ctx.name, addr: ctx.address, inc: 1, status: 'alive', tags, stateChange: ctx.clock.now() };
    this.insert(this.local);
  }

  get(name: string): MemberState | undefined {
    return this.byName.get(name);
  }

  byAddress(addr: string): MemberState | undefined {
    return this.byAddr.get(addr);
  }

  /** Members not failed or left, self included (memberlist estNumNodes). */
  numLive(): number {
    return this.live;
  }

  members(): Member[] {
    return this.list.map(snapshot);
  }

  /** The local alive message (to announce ourselves). */
  localAlive(): AliveMsg {
    const l = this.local;
    return { t: MessageType.Alive, node: l.name, addr: l.addr, inc: l.inc, tags: l.tags };
  }

  /** Change our tags: a new incarnation so the news overrides the old. */
  setLocalTags(tags: Tags): void {
    this.local.inc++;
    this.local.tags = tags;
    this.hooks.broadcast(this.local.name, this.localAlive());
  }

  /** Come back after a leave: alive again at a new incarnation. */
  rejoinLocal(): void {
    this.leaving = false;
    this.local.inc++;
    this.setStatus(this.local, 'alive');
    this.hooks.broadcast(this.local.name, this.localAlive());
  }

  /** Gracefully leave: dead(from = self); `onDone` when the news was gossiped out. */
  leaveLocal(onDone: () => void): void {
    this.leaving = true;
    this.deadNode({ t: MessageType.Dead, node: this.local.name, inc: this.local.inc, from: this.local.name }, onDone);
  }

  // -------------------------------------------------------------------------
  // The rules.

  /**
   * `quietIfNew`: do not re-gossip news about a member we had never heard of
   * (push-pull state: its sender already gossiped it when it learned it, and
   * re-gossiping a whole table from every join answer floods a mass join).
   */
  aliveNode(a: AliveMsg, quietIfNew = false): void {
    const self = this.ctx.name;
    // While leaving, echoes of our old alive news must not resurrect us.
    if (this.leaving && a.node === self) return;
    let state = this.byName.get(a.node);
    // Ignore implausible incarnation numbers (bounds.ts): believing one could put a member beyond refutation.
    if (!plausibleIncarnation(a.inc, state?.inc)) return this.ctx.implausible(`alive for ${a.node} at incarnation ${a.inc}`);
    let isNew = false;
    let updatesAddr = false;
    if (!state) {
      state = { name: a.node, addr: a.addr, inc: a.inc, status: 'failed', tags: a.tags, stateChange: this.ctx.clock.now() };
      this.insert(state);
      this.live--; // inserted as not-live; setStatus below counts it
      isNew = true;
    } else if (state.addr !== a.addr) {
      // Same name, another address: a restart elsewhere is fine once the old one is dead; otherwise a conflict.
      if (state.status !== 'failed' && state.status !== 'left') {
        this.hooks.conflict(state, a.addr);
        return;
      }
      updatesAddr = true;
    }
    const isLocal = a.node === self;
    // Ignore old incarnation numbers (for us only strictly older ones: equal may carry foreign tags to refute).
    if (!isNew && !updatesAddr && !isLocal && a.inc <= state.inc) return;
    if (!isNew && isLocal && a.inc < state.inc) return;
    this.clearSuspicion(a.node);
    if (isLocal) {
      // Our own news echoed back is fine; anything else about us must be refuted.
      if (a.inc === state.inc && a.addr === state.addr && tagsEqual(a.tags, state.tags)) return;
      this.refute(state, a.inc);
      return;
    }
    if (!(isNew && quietIfNew)) this.hooks.broadcast(a.node, a);
    const wasDown = isNew || state.status === 'failed' || state.status === 'left';
    const tagsChanged = !tagsEqual(state.tags, a.tags);
    if (updatesAddr) {
      this.byAddr.delete(state.addr);
      state.addr = a.addr;
      this.byAddr.set(state.addr, state);
    }
    state.inc = a.inc;
    state.tags = a.tags;
    if (state.status !== 'alive') this.setStatus(state, 'alive');
    if (wasDown) this.hooks.emit('member-join', snapshot(state));
    else if (tagsChanged || updatesAddr) this.hooks.emit('member-update', snapshot(state));
  }

  suspectNode(s: SuspectMsg): void {
    const state = this.byName.get(s.node);
    if (!state) return;
    // Ignore old incarnation numbers, and implausibly new ones (bounds.ts).
    if (s.inc < state.inc) return;
    if (!plausibleIncarnation(s.inc, state.inc)) return this.ctx.implausible(`suspect for ${s.node} at incarnation ${s.inc}`);
    // An independent confirmation of a running suspicion shortens it; re-gossip it if it was new.
    const timer = this.suspicions.get(s.node);
    if (timer) {
      if (timer.confirm(s.from, s.ev)) this.hooks.broadcast(s.node, s);
      return;
    }
    // Only alive members can become suspect (left and failed are final for their incarnation).
    if (state.status !== 'alive') return;
    // If this is us, refute.
    if (state === this.local) {
      this.refute(state, s.inc);
      return;
    }
    this.hooks.broadcast(s.node, s);
    state.inc = s.inc;
    this.setStatus(state, 'suspect');
    const changeTime = state.stateChange;
    // Buddy system: if we are the accuser, tell the suspect first so it can refute early.
    if (s.from === this.ctx.name) this.ctx.send(state.addr, [s]);
    const p = this.ctx.profile;
    const n = this.live;
    let k = p.suspicionMult - 2;
    // Not enough members to give the expected confirmations (minus ourselves and the suspect).
    if (n - 2 < k) k = 0;
    let min = suspicionTimeout(p.suspicionMult, n, p.probeInterval);
    let max = p.suspicionMaxTimeoutMult * min;
    if (!p.lifeguard) {
      k = 0;
      max = min;
    } else {
      // Lifeguard local health: if we have been missing acks and nacks ourselves, we are the likely
      // culprit, so give the accused correspondingly longer (memberlist scales only probes; we scale this too).
      min = this.ctx.awareness.scaleTimeout(min);
      max = this.ctx.awareness.scaleTimeout(max);
    }
    // Stream evidence from this many independent accusers (fewer in tiny clusters) cuts the wait to evidenceSuspicionTimeout.
    const evidenceNeeded = p.streamEvidence ? (n <= 3 ? 1 : 2) : Infinity;
    this.suspicions.set(
      s.node,
      new Suspicion(s.from, k, min, max, this.ctx.clock, { evidence: s.ev, needed: evidenceNeeded, timeout: p.evidenceSuspicionTimeout }, () => {
        const timer = this.suspicions.get(s.node);
        if (state.status !== 'suspect' || state.stateChange !== changeTime || !this.ctx.running()) {
          this.suspicions.delete(s.node);
          return;
        }
        // Slow, not dead: if the suspect showed signs of life while suspect (this time or within the
        // last `max`), wait for its refutation: another `min` from now, never beyond the Lifeguard maximum.
        const heard = this.heardAt.get(s.node);
        const now = this.ctx.clock.now();
        if (p.lifeguard && timer && !timer.hasEvidence && heard !== undefined && now - heard < max && timer.rearm(now + min)) return;
        this.suspicions.delete(s.node);
        this.deadNode({ t: MessageType.Dead, node: state.name, inc: state.inc, from: this.ctx.name });
      }),
    );
    this.hooks.emit('member-suspect', snapshot(state));
  }

  deadNode(d: DeadMsg, onDone?: () => void): void {
    const state = this.byName.get(d.node);
    if (!state) {
      onDone?.();
      return;
    }
    // Ignore old incarnation numbers, and implausibly new ones (bounds.ts).
    if (d.inc < state.inc || !plausibleIncarnation(d.inc, state.inc)) {
      if (d.inc >= state.inc) this.ctx.implausible(`dead for ${d.node} at incarnation ${d.inc}`);
      onDone?.();
      return;
    }
    const isLeave = d.from === d.node;
    // Already left: final. Already failed: only a leave upgrades it (a leave must never end as failed).
    if (state.status === 'left' || (state.status === 'failed' && !isLeave)) {
      onDone?.();
      return;
    }
    this.clearSuspicion(d.node);
    // If this is us, refute unless we are the one leaving.
    if (state === this.local && !this.leaving) {
      this.refute(state, d.inc);
      onDone?.();
      return;
    }
    this.hooks.broadcast(d.node, d, onDone);
    state.inc = d.inc;
    this.setStatus(state, isLeave ? 'left' : 'failed');
    if (state !== this.local) this.hooks.emit(isLeave ? 'member-leave' : 'member-failed', snapshot(state));
  }

  /** Merge a peer's full state (push-pull). `from` is the peer's name, used as the accuser. */
  mergeRemoteState(members: readonly WireMember[], from: string): void {
    for (const m of members) {
      // Most entries of a full state are news we already hold: an alive entry at an incarnation we
      // have passed, same address, about someone else is ignored by aliveNode anyway (no message built).
      if (m.s === WireStatus.Alive && m.n !== this.ctx.name) {
        const cur = this.byName.get(m.n);
        if (cur !== undefined && m.i <= cur.inc && cur.addr === m.a) continue;
      }
      switch (m.s) {
        case WireStatus.Alive:
          this.aliveNode({ t: MessageType.Alive, node: m.n, addr: m.a, inc: m.i, tags: m.g }, m.n !== from);
          break;
        case WireStatus.Left:
          this.deadNode({ t: MessageType.Dead, node: m.n, inc: m.i, from: m.n });
          break;
        // A peer's `failed` is only a suspicion here: the member gets its chance to refute.
        case WireStatus.Failed:
        case WireStatus.Suspect:
          this.suspectNode({ t: MessageType.Suspect, node: m.n, inc: m.i, from, ev: false });
          break;
      }
    }
  }

  /** Our full state for push-pull. */
  localState(): WireMember[] {
    return this.list.map((m) => ({ n: m.name, a: m.addr, i: m.inc, s: toWireStatus(m.status), g: m.tags }));
  }

  /** Remove tombstones older than their timeout; returns how many were reaped. */
  reap(): number {
    const now = this.ctx.clock.now();
    const p = this.ctx.profile;
    let reaped = 0;
    for (let i = this.list.length - 1; i >= 0; i--) {
      const m = this.list[i] as MemberState;
      if (m === this.local) continue;
      const limit = m.status === 'left' ? p.tombstoneTimeout : m.status === 'failed' ? p.reapTimeout : Infinity;
      if (now - m.stateChange < limit) continue;
      this.list.splice(i, 1);
      this.byName.delete(m.name);
      if (this.byAddr.get(m.addr) === m) this.byAddr.delete(m.addr);
      this.heardAt.delete(m.name);
      reaped++;
      this.hooks.emit('member-reap', snapshot(m));
    }
    return reaped;
  }

  shutdown(): void {
    for (const s of this.suspicions.values()) s.cancel();
    this.suspicions.clear();
  }

  private refute(me: MemberState, accusedInc: number): void {
    // Make sure the incarnation number beats the accusation.
    me.inc = Math.max(me.inc + 1, accusedInc + 1);
    // Being accused is a sign we may be the slow one (Lifeguard).
    if (this.ctx.profile.lifeguard) this.ctx.awareness.applyDelta(1);
    this.hooks.broadcast(me.name, this.localAlive());
  }

  private clearSuspicion(name: string): void {
    const s = this.suspicions.get(name);
    if (s) {
      s.cancel();
      this.suspicions.delete(name);
    }
  }

  /**
   * A frame arrived from `m` itself. If it is suspect, that is a sign of
   * life: remember it and tell the others (at most once per probe interval),
   * so that no one declares a slow member dead before its refutation lands.
   */
  heardFrom(m: MemberState): void {
    if (m.status !== 'suspect' || !this.ctx.profile.lifeguard) return;
    if (this.noteHeard(m.name)) {
      this.hooks.broadcast(`${m.name}\u0000heard`, { t: MessageType.Heard, node: m.name, inc: m.inc, from: this.ctx.name });
    }
  }

  /** A witness heard from a suspect. */
  heardWitness(h: HeardMsg): void {
    const state = this.byName.get(h.node);
    if (!state || state.status !== 'suspect' || h.inc < state.inc || !this.ctx.profile.lifeguard) return;
    if (!plausibleIncarnation(h.inc, state.inc)) return this.ctx.implausible(`heard for ${h.node} at incarnation ${h.inc}`);
    if (this.noteHeard(h.node)) this.hooks.broadcast(`${h.node}\u0000heard`, h);
  }

  /** Record a sign of life now; true if it is news (none in the last probe interval). */
  private noteHeard(name: string): boolean {
    const now = this.ctx.clock.now();
    const last = this.heardAt.get(name);
    this.heardAt.delete(name); // re-insert: the map stays in time order, oldest first
    this.heardAt.set(name, now);
    if (this.heardAt.size > 4096) {
      const oldest = this.heardAt.keys().next().value;
      if (oldest !== undefined) this.heardAt.delete(oldest);
    }
    return last === undefined || now - last >= this.ctx.profile.probeInterval;
  }

  private setStatus(m: MemberState, status: MemberState['status']): void {
    const wasLive = m.status === 'alive' || m.status === 'suspect';
    const isLive = status === 'alive' || status === 'suspect';
    if (wasLive && !isLive) this.live--;
    if (!wasLive && isLive) this.live++;
    m.status = status;
    m.stateChange = this.ctx.clock.now();
  }

  private insert(m: MemberState): void {
    this.byName.set(m.name, m);
    this.byAddr.set(m.addr, m);
    // Random position, so probe order and gossip targets are not biased by join order.
    const i = Math.floor(this.ctx.random() * (this.list.length + 1));
    this.list.push(m);
    const last = this.list.length - 1;
    this.list[last] = this.list[i] as MemberState;
    this.list[i] = m;
    this.live++;
  }
}
