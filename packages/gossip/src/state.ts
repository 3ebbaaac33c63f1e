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
import { ALIVE, FAILED, LEFT, MemberColumns, MemberRef, SUSPECT, identities, statusName, type StatusCode } from './internal/member-table';
import type { AliveMsg, DeadMsg, HeardMsg, Message, SuspectMsg, Tags, WireMember } from './internal/messages';
import { MessageType, WireStatus } from './internal/messages';
import { snapshot, tagsEqual, type Member, type MemberState, type MemberStatus } from './member';
import { suspicionTimeout } from './options';
import { Suspicion } from './suspicion';

export type MembershipEvent = 'member-join' | 'member-update' | 'member-leave' | 'member-failed' | 'member-reap' | 'member-suspect';

export interface MembershipHooks {
  emit(event: MembershipEvent, member: Member): void;
  /** Whether anyone listens to `event` (a suspicion is started on every member at once: no snapshot for nobody). */
  listens(event: MembershipEvent): boolean;
  /** Queue news about `key` (a member name) for gossip. */
  broadcast(key: string, msg: Message, onDone?: () => void): void;
  /** A member name is claimed from a second address while its owner is alive. */
  conflict(existing: MemberState, claimedAddr: string): void;
}

/** The latest sign of life from a suspect: when, and in which order among the others. */
interface HeardAt {
  at: number;
  seq: number;
}

/** Suspects whose signs of life are remembered at most (bounded memory). */
const HEARD_MAX = 4096;

export class Membership {
  /** Columns per member (internal/member-table.ts): no object per member. */
  private readonly cols: MemberColumns;
  readonly local: MemberRef;
  private readonly localId: number;
  private readonly suspicions = new Map<string, Suspicion>();
  /** Signs of life from members while they were suspect (slow, not dead): name → last time. Kept across refutations. */
  private readonly heardAt = new Map<string, HeardAt>();
  /** Order of the latest sign of life per name in `heardAt` (the least recent is dropped beyond HEARD_MAX). */
  private heardSeq = 0;
  private live = 0;
  leaving = false;

  constructor(
    private readonly ctx: NodeContext,
    private readonly hooks: MembershipHooks,
    tags: Tags,
  ) {
    this.cols = MemberColumns.owned(this);
    this.localId = this.insert(ctx.name, ctx.address, tags, 1, ALIVE);
    this.local = new MemberRef(this.cols, this.localId, ctx.name);
  }

  get(name: string): MemberRef | undefined {
    const id = this.cols.idOf(name);
    return id === undefined ? undefined : new MemberRef(this.cols, id, name);
  }

  /**
   * The member now at `addr`, if any. An address can be held by a tombstone
   * and by the member that took the address over since: the live one wins.
   */
  byAddress(addr: string): MemberRef | undefined {
    let found: number | undefined;
    for (const iid of identities.withAddr(addr) ?? []) {
      const id = identities.identName[iid] as number;
      if (!this.cols.has(id) || this.cols.ident[id] !== iid) continue;
      found = id;
      if (this.isLive(id)) break;
    }
    return found === undefined ? undefined : this.ref(found);
  }

  /** The name id of a member this node holds (no view allocated, unlike `get`). */
  idOf(name: string): number | undefined {
    return this.cols.idOf(name);
  }

  /** A view of the member with name id `id` (held by this node). */
  ref(id: number): MemberRef {
    return new MemberRef(this.cols, id, identities.nameOf(id) as string);
  }

  /** All members' ids, self included, in probe order (random; members inserted at random positions). Entries below `size` are in use; valid until the next change. */
  get order(): Int32Array {
    return this.cols.order;
  }

  get size(): number {
    return this.cols.size;
  }

  get localIdNumber(): number {
    return this.localId;
  }

  /** Column reads by id, for loops over many members (no view object each). */
  statusOf(id: number): MemberStatus {
    return statusName(this.cols.status[id] as number);
  }
  isLive(id: number): boolean {
    const s = this.cols.status[id];
    return s === ALIVE || s === SUSPECT;
  }
  isSuspect(id: number): boolean {
    return this.cols.status[id] === SUSPECT;
  }
  addrOf(id: number): string {
    return this.cols.addrOf(id);
  }
  /** When a member not alive got its status (not kept for alive members). */
  changedAt(id: number): number {
    return this.cols.changedAt(id);
  }

  /** Members not failed or left, self included (memberlist estNumNodes). */
  numLive(): number {
    return this.live;
  }

  members(): Member[] {
    const out: Member[] = [];
    for (let i = 0; i < this.cols.size; i++) out.push(snapshot(this.ref(this.cols.order[i] as number)));
    return out;
  }

  /** Names of the members not failed or left, self included. */
  liveNames(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.cols.size; i++) {
      const id = this.cols.order[i] as number;
      if (this.isLive(id)) out.push(identities.nameOf(id) as string);
    }
    return out;
  }

  /** The local alive message (to announce ourselves). */
  localAlive(): AliveMsg {
    const l = this.local;
    return { t: MessageType.Alive, node: l.name, addr: l.addr, inc: l.inc, tags: l.tags };
  }

  /** Change our tags: a new incarnation so the news overrides the old. */
  setLocalTags(tags: Tags): void {
    this.cols.setInc(this.localId, this.local.inc + 1);
    this.cols.setIdentity(this.localId, this.local.addr, tags);
    this.hooks.broadcast(this.local.name, this.localAlive());
  }

  /** Come back after a leave: alive again at a new incarnation. */
  rejoinLocal(): void {
    this.leaving = false;
    this.cols.setInc(this.localId, this.local.inc + 1);
    this.setStatus(this.localId, ALIVE);
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
    const cols = this.cols;
    // While leaving, echoes of our old alive news must not resurrect us.
    if (this.leaving && a.node === self) return;
    let id = cols.idOf(a.node);
    // Ignore implausible incarnation numbers (bounds.ts): believing one could put a member beyond refutation.
    if (!plausibleIncarnation(a.inc, id === undefined ? undefined : cols.inc[id])) return this.ctx.implausible(`alive for ${a.node} at incarnation ${a.inc}`);
    let isNew = false;
    let updatesAddr = false;
    if (id === undefined) {
      // New members always end up alive below (a new name is never ours): inserted alive at once.
      id = this.insert(a.node, a.addr, a.tags, a.inc, ALIVE);
      isNew = true;
    } else if (cols.addrOf(id) !== a.addr) {
      // Same name, another address: a restart elsewhere is fine once the old one is dead; otherwise a conflict.
      if (this.isLive(id)) {
        this.hooks.conflict(this.ref(id), a.addr);
        return;
      }
      updatesAddr = true;
    }
    const isLocal = a.node === self;
    const inc = cols.inc[id] as number;
    // Ignore old incarnation numbers (for us only strictly older ones: equal may carry foreign tags to refute).
    if (!isNew && !updatesAddr && !isLocal && a.inc <= inc) return;
    if (!isNew && isLocal && a.inc < inc) return;
    this.clearSuspicion(a.node);
    if (isLocal) {
      // Our own news echoed back is fine; anything else about us must be refuted.
      if (a.inc === inc && a.addr === cols.addrOf(id) && tagsEqual(a.tags, cols.tagsOf(id))) return;
      this.refute(a.inc);
      return;
    }
    if (!(isNew && quietIfNew)) this.hooks.broadcast(a.node, a);
    const status = cols.status[id];
    const wasDown = isNew || status === FAILED || status === LEFT;
    const tagsChanged = !tagsEqual(cols.tagsOf(id), a.tags);
    if (updatesAddr || tagsChanged) cols.setIdentity(id, a.addr, a.tags);
    cols.setInc(id, a.inc);
    if (status !== ALIVE) this.setStatus(id, ALIVE);
    // No snapshot for nobody: a join at N = 10,000 inserts 10⁸ members in one process.
    if (wasDown) {
      if (this.hooks.listens('member-join')) this.hooks.emit('member-join', snapshot(this.ref(id)));
    } else if (tagsChanged || updatesAddr) this.hooks.emit('member-update', snapshot(this.ref(id)));
  }

  suspectNode(s: SuspectMsg): void {
    const cols = this.cols;
    const id = cols.idOf(s.node);
    if (id === undefined) return;
    // Ignore old incarnation numbers, and implausibly new ones (bounds.ts).
    const inc = cols.inc[id] as number;
    if (s.inc < inc) return;
    if (!plausibleIncarnation(s.inc, inc)) return this.ctx.implausible(`suspect for ${s.node} at incarnation ${s.inc}`);
    // An independent confirmation of a running suspicion shortens it; re-gossip it if it was new.
    const timer = this.suspicions.get(s.node);
    if (timer) {
      if (timer.confirm(s.from, s.ev)) this.hooks.broadcast(s.node, s);
      return;
    }
    // Only alive members can become suspect (left and failed are final for their incarnation).
    if (cols.status[id] !== ALIVE) return;
    // If this is us, refute.
    if (id === this.localId) {
      this.refute(s.inc);
      return;
    }
    this.hooks.broadcast(s.node, s);
    cols.setInc(id, s.inc);
    this.setStatus(id, SUSPECT);
    const state = this.ref(id);
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
        const heard = this.heardAt.get(s.node)?.at;
        const now = this.ctx.clock.now();
        if (p.lifeguard && timer && !timer.hasEvidence && heard !== undefined && now - heard < max && timer.rearm(now + min)) return;
        this.suspicions.delete(s.node);
        this.deadNode({ t: MessageType.Dead, node: state.name, inc: state.inc, from: this.ctx.name });
      }),
    );
    if (this.hooks.listens('member-suspect')) this.hooks.emit('member-suspect', snapshot(state));
  }

  deadNode(d: DeadMsg, onDone?: () => void): void {
    const cols = this.cols;
    const id = cols.idOf(d.node);
    if (id === undefined) {
      onDone?.();
      return;
    }
    // Ignore old incarnation numbers, and implausibly new ones (bounds.ts).
    const inc = cols.inc[id] as number;
    if (d.inc < inc || !plausibleIncarnation(d.inc, inc)) {
      if (d.inc >= inc) this.ctx.implausible(`dead for ${d.node} at incarnation ${d.inc}`);
      onDone?.();
      return;
    }
    const isLeave = d.from === d.node;
    const status = cols.status[id];
    // Already left: final. Already failed: only a leave upgrades it (a leave must never end as failed).
    if (status === LEFT || (status === FAILED && !isLeave)) {
      onDone?.();
      return;
    }
    this.clearSuspicion(d.node);
    // If this is us, refute unless we are the one leaving.
    if (id === this.localId && !this.leaving) {
      this.refute(d.inc);
      onDone?.();
      return;
    }
    this.hooks.broadcast(d.node, d, onDone);
    cols.setInc(id, d.inc);
    this.setStatus(id, isLeave ? LEFT : FAILED);
    if (id !== this.localId) this.hooks.emit(isLeave ? 'member-leave' : 'member-failed', snapshot(this.ref(id)));
  }

  /** Merge a peer's full state (push-pull). `from` is the peer's name, used as the accuser. */
  mergeRemoteState(members: readonly WireMember[], from: string): void {
    const cols = this.cols;
    for (const m of members) {
      // Most entries of a full state are news we already hold: an alive entry at an incarnation we
      // have passed, same address, about someone else is ignored by aliveNode anyway (no message built).
      if (m.s === WireStatus.Alive && m.n !== this.ctx.name) {
        // An entry shared in-process names its identity: same name and address if we hold that identity.
        const iid = identities.identityOfEntry(m);
        if (iid !== undefined) {
          const id = identities.identName[iid] as number;
          if (cols.has(id) && cols.ident[id] === iid && m.i <= (cols.inc[id] as number)) continue;
        } else {
          const id = cols.idOf(m.n);
          if (id !== undefined && m.i <= (cols.inc[id] as number) && cols.addrOf(id) === m.a) continue;
        }
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

  /** Our full state for push-pull (entries shared with other nodes that agree: read-only). */
  localState(): WireMember[] {
    const cols = this.cols;
    const out: WireMember[] = new Array<WireMember>(cols.size);
    for (let i = 0; i < cols.size; i++) {
      const id = cols.order[i] as number;
      out[i] = identities.wireEntry(cols.ident[id] as number, cols.inc[id] as number, cols.status[id] as number);
    }
    return out;
  }

  /** Remove tombstones older than their timeout; returns how many were reaped. */
  reap(): number {
    const now = this.ctx.clock.now();
    const p = this.ctx.profile;
    const cols = this.cols;
    const due: number[] = [];
    for (let i = 0; i < cols.size; i++) {
      const id = cols.order[i] as number;
      if (id === this.localId) continue;
      const status = cols.status[id];
      const limit = status === LEFT ? p.tombstoneTimeout : status === FAILED ? p.reapTimeout : Infinity;
      if (limit !== Infinity && now - cols.changedAt(id) >= limit) due.push(id);
    }
    for (const id of due) {
      const gone = snapshot(this.ref(id));
      cols.remove(id);
      this.heardAt.delete(gone.name);
      this.hooks.emit('member-reap', gone);
    }
    return due.length;
  }

  shutdown(): void {
    for (const s of this.suspicions.values()) s.cancel();
    this.suspicions.clear();
  }

  private refute(accusedInc: number): void {
    // Make sure the incarnation number beats the accusation.
    const cols = this.cols;
    cols.setInc(this.localId, Math.max((cols.inc[this.localId] as number) + 1, accusedInc + 1));
    // Being accused is a sign we may be the slow one (Lifeguard).
    if (this.ctx.profile.lifeguard) this.ctx.awareness.applyDelta(1);
    this.hooks.broadcast(this.local.name, this.localAlive());
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
   * life: remember it and tell the others (at most twice per minimum suspicion timeout),
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
    const id = this.cols.idOf(h.node);
    if (id === undefined || this.cols.status[id] !== SUSPECT || h.inc < (this.cols.inc[id] as number) || !this.ctx.profile.lifeguard) return;
    if (!plausibleIncarnation(h.inc, this.cols.inc[id])) return this.ctx.implausible(`heard for ${h.node} at incarnation ${h.inc}`);
    if (this.noteHeard(h.node)) this.hooks.broadcast(`${h.node}\u0000heard`, h);
  }

  /**
   * Record a sign of life now; true if it is news worth gossiping: none in
   * the last half of the minimum suspicion timeout (at least a probe
   * interval). A witness keeps a suspect alive for `max` (six minimums), so
   * refreshing it twice per minimum is plenty; refreshing it every probe
   * interval made every member re-gossip every suspect's witness each
   * second, which filled the gossip budget of a 3,000-member mesh with
   * witnesses for 33 slow members (68 frames per member per second).
   */
  private noteHeard(name: string): boolean {
    const now = this.ctx.clock.now();
    // Updated in place: a delete and re-insert per witness (every copy of every `heard` received)
    // churned the map's table, a few per cent of a simulated window's CPU. The least recently
    // heard is found by a scan, only when a new name overflows the bound.
    const rec = this.heardAt.get(name);
    const last = rec?.at;
    if (rec !== undefined) {
      rec.at = now;
      rec.seq = this.heardSeq++;
    } else {
      this.heardAt.set(name, { at: now, seq: this.heardSeq++ });
      if (this.heardAt.size > HEARD_MAX) this.dropLeastRecentHeard();
    }
    if (last === undefined) return true;
    const p = this.ctx.profile;
    return now - last >= Math.max(p.probeInterval, suspicionTimeout(p.suspicionMult, this.live, p.probeInterval) / 2);
  }

  private dropLeastRecentHeard(): void {
    let oldest: string | undefined;
    let seq = Infinity;
    for (const [name, rec] of this.heardAt) {
      if (rec.seq < seq) {
        seq = rec.seq;
        oldest = name;
      }
    }
    if (oldest !== undefined) this.heardAt.delete(oldest);
  }

  private setStatus(id: number, status: StatusCode): void {
    const cols = this.cols;
    const was = cols.status[id];
    const wasLive = was === ALIVE || was === SUSPECT;
    const isLive = status === ALIVE || status === SUSPECT;
    if (wasLive && !isLive) this.live--;
    if (!wasLive && isLive) this.live++;
    cols.setStatus(id, status, this.ctx.clock.now());
  }

  /** Add a member (at a random position of the probe order, so it is not biased by join order). */
  private insert(name: string, addr: string, tags: Tags, inc: number, status: StatusCode): number {
    const id = this.cols.add(name, addr, tags, inc, status, this.ctx.clock.now(), this.ctx.random);
    if (status === ALIVE || status === SUSPECT) this.live++;
    return id;
  }
}
