/**
 * The sending half of a unit's links: outbox, sequence numbers,
 * retransmission, acks, sync offers. The decisions (what to queue, what to
 * resend, what an ack releases, how to answer a pull) are pure functions in
 * link-protocol.ts; this class executes them against the link store, the
 * transport and timers.
 *
 * A handler publishes by writing this unit's bag and bumping its version in
 * relation state (relation.ts); that write is part of the run's commit.
 * What a link carries is its relation's effective bag (the endpoint-wide
 * bag under the relation's own keys, at the version it last changed:
 * state.ts), so a per-relation publish, or an endpoint-wide one that a
 * relation overrides, queues nothing on the relations it leaves unchanged.
 * After every commit the sender compares, per link, the committed bag
 * version with the version it last queued (`LinkRecord.queuedVersion`) and,
 * if newer, appends one data message carrying the whole bag with the link's
 * next sequence number to the link's outbox, puts the record and transmits
 * only once the store's flush says it is durable. A crash between the commit and the put is harmless:
 * on start the same comparison runs again on the recovered knowledge base
 * and queues the message then. So the outgoing update is a function of
 * committed state, which is what "part of the commit" requires, and a run
 * that rolls back never sends anything. Unacknowledged messages are
 * retransmitted with exponential backoff (paused while the unit is
 * unreachable or departed, resumed at once when it comes back).
 */
import { BACKGROUND, KEEP_ALIVE, type Clock, type TimerHandle } from '@rhizome/clock';
import type { RunReport } from '@rhizome/engine';
import type { LinkContext } from './link-context';
import { acknowledge, answerPull, queueData, retransmission } from './link-protocol';
import { emptyLinkRecord, type LinkRecord } from '../link-store';
import type { AckMessage, PullMessage, SyncMessage, Unstamped } from '../messages';
import { findRelation, forEachJoined, type RelationRef } from './relation-lookup';
import { asEndpointState, effectiveLocal, LINKS_KEY, linkId, type EndpointState } from '../state';

export interface RetransmitOptions {
  readonly baseMs: number;
  readonly maxMs: number;
  /** Messages resent per link per retransmission. */
  readonly window: number;
  /** Period of the anti-entropy round: a sync offer on every link, so views converge even if every other sync was lost. */
  readonly syncIntervalMs: number;
}

export const DEFAULT_RETRANSMIT_OPTIONS: RetransmitOptions = Object.freeze({
  // A LAN round trip plus a run is well under this; retransmitting sooner
  // would mostly duplicate messages whose ack is on its way.
  baseMs: 500,
  // Capped so a link that heals without a reachability notice recovers within seconds.
  maxMs: 10_000,
  // Bounded, so a long outbox after a partition is not sent as one burst.
  window: 32,
  // One small message per link per half minute; catches what every event-driven sync missed.
  syncIntervalMs: 30_000,
});

export interface LinkSenderOptions {
  readonly clock: Clock;
  /** Validated by the manager. */
  readonly retransmit: RetransmitOptions;
  /** Unacknowledged messages kept per link (RelationManagerOptions.maxOutbox). */
  readonly maxOutbox: number;
  /** Stamps a new link record's epoch (RelationManagerOptions.incarnation). */
  readonly incarnation: () => number;
  /** The version of interface `name` this unit speaks (its registered definition), stamped on data messages. */
  readonly ifaceVersion: (name: string) => string;
}

interface LinkTimer {
  handle: TimerHandle | undefined;
  delay: number;
}

export class LinkSender {
  private readonly timers = new Map<string, LinkTimer>();
  private syncTimer: TimerHandle | undefined;

  constructor(
    private readonly ctx: LinkContext,
    private readonly options: LinkSenderOptions,
  ) {}

  /** Engine report hook: after a commit that changed relation state, queues what the commit published. */
  afterRun(report: RunReport): void {
    if (this.ctx.isStopped() || report.outcome !== 'committed') return;
    const endpoints = report.relationsChanged.filter((e) => e !== LINKS_KEY);
    if (endpoints.length > 0) this.reconcile(endpoints);
  }

  /** Queues a data message on every link whose committed local bag (or app bag) is newer than what it last queued. */
  reconcile(endpoints?: readonly string[]): void {
    const kb = this.ctx.engine.knowledge;
    for (const endpoint of endpoints ?? Object.keys(kb.relations)) {
      const state = asEndpointState(kb.relations[endpoint]);
      if (!state) continue;
      for (const [relationId, rel] of Object.entries(state.relations)) {
        for (const unit of Object.keys(rel.units)) this.queueIfNewer(state, relationId, unit, false);
      }
    }
  }

  /** Offers a sync on every link now, then every `syncIntervalMs` until stopped (anti-entropy). */
  startSyncRounds(): void {
    forEachJoined(this.ctx.engine.knowledge, (ref, unit) => this.sendSync(ref, unit));
    this.scheduleSyncRound();
  }

  /** Stops every retransmission timer and the sync rounds. */
  stop(): void {
    for (const t of this.timers.values()) if (t.handle !== undefined) this.options.clock.clearTimeout(t.handle);
    this.timers.clear();
    if (this.syncTimer !== undefined) this.options.clock.clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
  }

  /** Resends the head of a link's outbox (if the unit is live) and re-arms its timer. */
  retransmitNow(id: string): void {
    if (this.ctx.isStopped()) return;
    const rec = this.ctx.store.get(id);
    if (!rec || rec.outbox.length === 0) {
      this.pause(id);
      return;
    }
    const ref = findRelation(this.ctx.engine.knowledge, rec.relationId);
    if (!ref?.relation.units[rec.remoteUnit] || !this.ctx.canSend(rec.remoteUnit)) {
      this.pause(id);
      return;
    }
    for (const m of retransmission(rec, this.options.retransmit.window)) this.ctx.send(rec.remoteUnit, m);
    this.pause(id);
    this.armTimer(id, rec.remoteUnit);
  }

  /** The unit is reachable again: back to the shortest backoff, and resend at once. */
  resume(id: string): void {
    this.resetBackoff(id);
    this.retransmitNow(id);
  }

  /** Pauses a link's retransmission until something resends (retransmitNow, resume) re-arms it. */
  pause(id: string): void {
    const t = this.timers.get(id);
    if (t?.handle !== undefined) this.options.clock.clearTimeout(t.handle);
    if (t) t.handle = undefined;
  }

  /** Pauses retransmission on every link to `unit`. */
  pauseUnit(unit: string): void {
    for (const id of this.ctx.store.keys()) if (id.endsWith(`|${unit}`)) this.pause(id);
  }

  /** Drops a link's timer, for a link whose record is being deleted. */
  forget(id: string): void {
    this.pause(id);
    this.timers.delete(id);
  }

  sendSync(ref: RelationRef, unit: string): void {
    if (!this.ctx.canSend(unit)) return;
    const rec = this.sendRecord(linkId(ref.relationId, unit), ref.relationId, unit, ref.state.incarnation);
    const app = ref.state.role === 'peers' ? ref.state.app : undefined;
    const msg: Unstamped<SyncMessage> = {
      type: 'sync',
      rel: ref.relationId,
      from: this.ctx.unit,
      to: unit,
      epoch: rec.epoch,
      inc: ref.state.incarnation,
      version: (effectiveLocal(ref.state, ref.relationId) ?? ref.state.local).version,
      appVersion: app?.version ?? 0,
      lastSeq: rec.nextSeq - 1,
    };
    this.ctx.send(unit, msg);
  }

  receiveAck(m: AckMessage): void {
    const id = linkId(m.rel, m.from);
    const rec = this.ctx.store.get(id);
    const next = rec && acknowledge(rec, m);
    if (!next) return;
    this.ctx.store.put(id, next);
    this.resetBackoff(id);
    if (next.outbox.length === 0) this.pause(id);
  }

  receivePull(m: PullMessage): void {
    const ref = findRelation(this.ctx.engine.knowledge, m.rel);
    if (!ref?.relation.units[m.from]) return;
    const id = linkId(m.rel, m.from);
    let rec = this.sendRecord(id, m.rel, m.from, ref.state.incarnation);
    // A pull says what the receiver applied (everything before `expect`): an ack that cannot be lost with the data
    // messages' acks. Without it, a receiver that dropped its view (departed, then joined again) would be answered
    // with retransmissions it takes for duplicates, and never get the bag again.
    const acked = acknowledge(rec, { epoch: m.epoch, seq: m.expect - 1 });
    if (acked) {
      this.ctx.store.put(id, acked);
      rec = acked;
      this.resetBackoff(id);
      if (acked.outbox.length === 0) this.pause(id);
    }
    switch (answerPull(rec, ref.state, m)) {
      case 'retransmit':
        return this.retransmitNow(id);
      case 'send-current':
        return this.queueIfNewer(ref.state, m.rel, m.from, true);
      case 'nothing':
        return;
    }
  }

  private scheduleSyncRound(): void {
    if (this.ctx.isStopped()) return;
    // Periodic upkeep for as long as the manager runs: it never holds a process open by itself.
    this.syncTimer = this.options.clock.setTimeout(
      () => {
        this.syncTimer = undefined;
        if (this.ctx.isStopped()) return;
        forEachJoined(this.ctx.engine.knowledge, (ref, unit) => this.sendSync(ref, unit));
        this.scheduleSyncRound();
      },
      this.options.retransmit.syncIntervalMs,
      BACKGROUND,
    );
  }

  private queueIfNewer(state: EndpointState, relationId: string, unit: string, force: boolean): void {
    const id = linkId(relationId, unit);
    const rec = this.sendRecord(id, relationId, unit, state.incarnation);
    const queued = queueData(rec, state, { relationId, from: this.ctx.unit, to: unit, force, maxOutbox: this.options.maxOutbox, ifaceVersion: this.options.ifaceVersion(state.interface) });
    if (!queued) return;
    // Durable first (ctx.send flushes the store), then on the wire.
    this.ctx.store.put(id, queued.record);
    if (this.ctx.canSend(unit)) this.ctx.send(unit, queued.message);
    this.armTimer(id, unit);
  }

  /**
   * A link's record for sending bags of endpoint incarnation `bagInc`. A
   * missing record, or one kept from an older incarnation (the knowledge
   * base was lost, the store was not), starts a new epoch; its receive
   * inbox is kept. Stored at once, so the epoch is stable.
   */
  private sendRecord(id: string, relationId: string, unit: string, bagInc: number): LinkRecord {
    const rec = this.ctx.store.get(id);
    if (rec && rec.bagInc === bagInc && rec.epoch > 0) return rec;
    const fresh: LinkRecord = { ...emptyLinkRecord(relationId, unit, this.options.incarnation(), bagInc), inbox: rec?.inbox ?? [] };
    this.ctx.store.put(id, fresh);
    return fresh;
  }

  private armTimer(id: string, unit: string): void {
    if (this.ctx.isStopped() || !this.ctx.canSend(unit)) return;
    let t = this.timers.get(id);
    if (!t) {
      t = { handle: undefined, delay: this.options.retransmit.baseMs };
      this.timers.set(id, t);
    }
    if (t.handle !== undefined) return;
    const timer = t;
    // Due work: a reachable peer has not acknowledged a committed message yet.
    timer.handle = this.options.clock.setTimeout(
      () => {
        timer.handle = undefined;
        if (this.ctx.isStopped()) return;
        timer.delay = Math.min(this.options.retransmit.maxMs, timer.delay * 2);
        this.retransmitNow(id);
      },
      timer.delay,
      KEEP_ALIVE,
    );
  }

  /** Back to the shortest retransmission delay: the link just made progress (an ack) or healed. */
  private resetBackoff(id: string): void {
    const t = this.timers.get(id);
    if (t) t.delay = this.options.retransmit.baseMs;
  }
}
