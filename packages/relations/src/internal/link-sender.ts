/**
 * The sending half of a unit's links: numbering, retransmission, acks, sync
 * offers. The decisions (what to queue, what to resend, how to answer a
 * pull) are pure functions in link-protocol.ts; this class executes them
 * against the knowledge base, the transport and timers.
 *
 * One durable record per message: the run's commit. A handler publishes by
 * writing this unit's bag and bumping its version in relation state
 * (relation.ts). Before that run commits, inside its transaction, the
 * engine's beforeCommit hook (`stageOutgoing`) compares per link the bag
 * version the run leaves with the version the link last queued and, if
 * newer, stages the link's send record (`@out/<relation>`, send-record.ts) with
 * the next sequence number and a data message carrying the whole bag. So
 * the message, its number and the bag it carries are one commit: the
 * engine makes it durable (the agent's one fdatasync'd append) or rolls it
 * back with the run. Once the commit is durable (afterCommit) its new
 * messages go on the wire; retransmissions and sync offers read the last
 * durable knowledge base (`engine.knowledge`). Hence:
 *   - nothing leaves before it is durable: everything sent is read from a
 *     durable commit;
 *   - a run that rolls back sends nothing: its numbers and messages were
 *     staged in it, and vanish with it (a group-committed run abandoned
 *     after a failed fsync too: the engine goes back to the state before);
 *   - numbers are assigned once, consecutively, within an epoch, across
 *     crashes: the next number is committed with the message that used the
 *     previous one, and a crash loses only runs that were never durable,
 *     whose messages never left;
 *   - nothing committed is lost: the outbox is in the same commit, and on
 *     start every durable outbox is retransmitted.
 * Acks are not written at all: the sender keeps in memory what each link
 * acknowledged, which keeps retransmissions, `unacked` and the next
 * queueing (which trims the outbox it writes anyway) from resending it. A
 * crash forgets them: the restarted sender retransmits messages that were
 * acknowledged, and the receiver, whose applied position is committed with
 * what it applied (link-receiver.ts), drops them as duplicates and acks
 * again. The receiver's guarantees (applied at most once, at least once,
 * in order) therefore rest on sequence numbers that this side commits
 * before sending, and on nothing else this side stores. (The price: an
 * idle link's record keeps its last message, acknowledged or not, until
 * the next message on it trims it: one copy of the bag per link.)
 *
 * A pull that asks for the current bag (the receiver lost its view) needs a
 * new sequence number, hence a run of its own (`LINK_RESEND_EVENT`) that
 * queues the bag in its commit. Unacknowledged messages are retransmitted
 * with exponential backoff (retransmit-timers.ts; paused while the unit is
 * unreachable or departed, resumed at once when it comes back).
 */
import { BACKGROUND, type Clock, type TimerHandle } from '@rhizome/clock';
import { EngineError, internalEvent, type Json, type RunCommit, type Transaction } from '@rhizome/engine';
import type { LinkContext } from './link-context';
import { answerPull, queueData, retransmission } from './link-protocol';
import type { AckMessage, PullMessage, SyncMessage, Unstamped } from '../messages';
import { findRelation, forEachJoined, type RelationRef } from './relation-lookup';
import { RetransmitTimers, type RetransmitOptions } from './retransmit-timers';
import { asSendRecords, OUTBOX_PREFIX, outboxKey, type SendRecord, type SendRecords } from '../send-record';
import { asEndpointState, effectiveLocal, linkId, type EndpointState } from '../state';

/** Internal event of a run that queues a link's current bag under a new sequence number (a pull asked for it). No charm should need it. */
export const LINK_RESEND_EVENT = 'relation.link-resend';
/** Internal event of the run on start that queues committed bags no link queued yet (state from an older version). */
export const LINK_RECONCILE_EVENT = 'relation.link-reconcile';

export interface LinkSenderOptions {
  readonly clock: Clock;
  /** Validated by the manager. */
  readonly retransmit: RetransmitOptions;
  /** Unacknowledged messages kept per link (RelationManagerOptions.maxOutbox). */
  readonly maxOutbox: number;
  /** Stamps a new send record's epoch (RelationManagerOptions.incarnation). */
  readonly incarnation: () => number;
  /** The version of interface `name` this unit speaks (its registered definition), stamped on data messages. */
  readonly ifaceVersion: (name: string) => string;
  /**
   * Numbering to continue for a link that has no send record yet: a record
   * an older version kept in its link store (manager.ts moves it into the
   * knowledge base on start).
   */
  readonly legacyRecord: (id: string) => SendRecord | undefined;
}

/** A position on a link: sequence number `seq` of epoch `epoch`. */
interface Position {
  readonly epoch: number;
  readonly seq: number;
}

export class LinkSender {
  private readonly timers: RetransmitTimers;
  private syncTimer: TimerHandle | undefined;
  /** Per link: the highest seq the receiver acknowledged (memory only: see the header). */
  private readonly acked = new Map<string, Position>();
  /** Per link: the highest seq put on the wire after its commit, so each durable message leaves once from afterCommit. */
  private readonly sent = new Map<string, Position>();
  /** Links with a resend run queued, so a burst of pulls queues one. */
  private readonly resending = new Set<string>();

  constructor(
    private readonly ctx: LinkContext,
    private readonly options: LinkSenderOptions,
  ) {
    this.timers = new RetransmitTimers(options.clock, options.retransmit, () => !ctx.isStopped(), (id) => this.retransmitNow(id));
  }

  /**
   * Engine beforeCommit hook: in the run's transaction, queues a data
   * message on every link of an endpoint the run changed whose effective
   * bag (or app bag) is newer than what the link last queued.
   */
  stageOutgoing(tx: Transaction, changedRelations: readonly string[]): void {
    for (const endpoint of changedRelations) {
      if (endpoint.startsWith('@')) continue;
      const state = asEndpointState(tx.relationState(endpoint));
      if (!state) continue;
      for (const [relationId, rel] of Object.entries(state.relations)) this.stageQueue(tx, state, relationId, Object.keys(rel.units), false);
    }
  }

  /**
   * On start, when there is anything to do: one run that moves the numbering
   * and outbox of records an older version kept in its link store (`legacy`
   * link ids) into the knowledge base, and queues the committed bags no link
   * queued yet (runs that committed before the manager existed, or state
   * from an older version); `committed` is called once it is durable.
   */
  recover(legacy: readonly string[], committed: () => void): void {
    if (legacy.length === 0 && !this.needsReconcile()) return;
    this.ctx.engine
      .submit(internalEvent(LINK_RECONCILE_EVENT, { links: legacy.length }), {
        apply: (tx) => {
          this.stageLegacy(tx, legacy);
          this.stageOutgoing(tx, Object.keys(this.ctx.engine.knowledge.relations));
        },
      })
      .then(committed, (error: unknown) => this.runFailed(error));
  }

  /** Whether some link of the committed state has a bag version it has not queued (stageOutgoing missed a commit). */
  private needsReconcile(): boolean {
    const kb = this.ctx.engine.knowledge;
    for (const endpoint of Object.keys(kb.relations)) {
      const state = endpoint.startsWith('@') ? undefined : asEndpointState(kb.relations[endpoint]);
      if (!state) continue;
      for (const [relationId, rel] of Object.entries(state.relations)) {
        const records = asSendRecords(kb.relations[outboxKey(relationId)]);
        for (const unit of Object.keys(rel.units)) {
          const id = linkId(relationId, unit);
          // Epoch 0 for a record that does not exist: a check, no stamp is used up.
          if (queueData(this.base(records[unit], id, relationId, unit, state.incarnation, 0), state, this.queueInput(state, relationId, unit, false))) return true;
        }
      }
    }
    return false;
  }


  /** After a durable commit: puts the messages it queued on the wire. */
  afterCommit(commit: RunCommit): void {
    if (this.ctx.isStopped()) return;
    for (const key of commit.report.relationsChanged) {
      if (!key.startsWith(OUTBOX_PREFIX)) continue;
      const relationId = key.slice(OUTBOX_PREFIX.length);
      for (const [unit, rec] of Object.entries(asSendRecords(commit.kb.relations[key]))) this.sendNew(linkId(relationId, unit), unit, rec);
    }
  }

  /** On start: every durable outbox is due again (what was acknowledged before a crash is not known). */
  resendAll(): void {
    for (const [id, rec] of this.records()) {
      this.sent.set(id, { epoch: rec.epoch, seq: rec.nextSeq - 1 });
      if (rec.outbox.length > 0) this.retransmitNow(id);
    }
  }

  /** Whether the link has a durable send record. */
  hasRecord(relationId: string, unit: string): boolean {
    return this.durableRecord(relationId, unit) !== undefined;
  }

  /**
   * Part of the recovery run: moves the numbering and outbox of records an
   * older version kept in its link store into the knowledge base, for links
   * that have no send record there yet.
   */
  private stageLegacy(tx: Transaction, ids: readonly string[]): void {
    for (const id of ids) {
      const [relationId, unit] = splitLinkId(id);
      const ref = findRelation(this.ctx.engine.knowledge, relationId);
      const legacy = ref && this.usable(this.options.legacyRecord(id), ref.state.incarnation);
      const key = outboxKey(relationId);
      const records = asSendRecords(tx.relationState(key));
      if (!legacy || records[unit]) continue;
      tx.updateRelationState(key, () => ({ ...records, [unit]: legacy }) as unknown as Json);
    }
  }

  /** Offers a sync on every link now, then every `syncIntervalMs` until stopped (anti-entropy). */
  startSyncRounds(): void {
    forEachJoined(this.ctx.engine.knowledge, (ref, unit) => this.sendSync(ref, unit));
    this.scheduleSyncRound();
  }

  /** Stops every retransmission timer and the sync rounds. */
  stop(): void {
    this.timers.stop();
    if (this.syncTimer !== undefined) this.options.clock.clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
  }

  /** Resends the head of a link's unacknowledged messages (if the unit is live) and re-arms its timer. */
  retransmitNow(id: string): void {
    if (this.ctx.isStopped()) return;
    const [relationId, unit] = splitLinkId(id);
    const rec = this.pendingView(id, this.durableRecord(relationId, unit));
    if (!rec || rec.outbox.length === 0) {
      this.pause(id);
      return;
    }
    const ref = findRelation(this.ctx.engine.knowledge, relationId);
    if (!ref?.relation.units[unit] || !this.ctx.canSend(unit)) {
      this.pause(id);
      return;
    }
    for (const m of retransmission(rec, this.options.retransmit.window)) this.ctx.send(unit, m);
    this.pause(id);
    this.armTimer(id, unit);
  }

  /** The unit is reachable again: back to the shortest backoff, and resend at once. */
  resume(id: string): void {
    this.timers.resetBackoff(id);
    this.retransmitNow(id);
  }

  /** Pauses a link's retransmission until something resends (retransmitNow, resume) re-arms it. */
  pause(id: string): void {
    this.timers.pause(id);
  }

  /** Pauses retransmission on every link to `unit`. */
  pauseUnit(unit: string): void {
    for (const id of this.timers.ids()) if (id.endsWith(`|${unit}`)) this.pause(id);
  }

  /** Drops a link's memory (timer, acks), for a link whose record is being deleted. */
  forget(id: string): void {
    this.timers.forget(id);
    this.acked.delete(id);
    this.sent.delete(id);
    this.resending.delete(id);
  }

  /** Drops the memory of every link of a removed relation. */
  forgetRelation(relationId: string): void {
    const prefix = `${relationId}|`;
    for (const id of new Set([...this.timers.ids(), ...this.acked.keys(), ...this.sent.keys(), ...this.resending])) if (id.startsWith(prefix)) this.forget(id);
  }

  /** Messages of the link's durable record not acknowledged (as far as this process knows). */
  unacked(relationId: string, unit: string): number {
    return this.pendingView(linkId(relationId, unit), this.durableRecord(relationId, unit))?.outbox.length ?? 0;
  }

  /** Next sequence number of the link's durable record (1 if it has none). */
  nextSeq(relationId: string, unit: string): number {
    return this.durableRecord(relationId, unit)?.nextSeq ?? 1;
  }

  /** Link ids with a durable send record. */
  linkIds(): string[] {
    return this.records().map(([id]) => id);
  }

  sendSync(ref: RelationRef, unit: string): void {
    if (!this.ctx.canSend(unit)) return;
    const rec = this.usable(this.durableRecord(ref.relationId, unit), ref.state.incarnation);
    const app = ref.state.role === 'peers' ? ref.state.app : undefined;
    const msg: Unstamped<SyncMessage> = {
      type: 'sync',
      rel: ref.relationId,
      from: this.ctx.unit,
      to: unit,
      epoch: rec?.epoch ?? 0,
      inc: ref.state.incarnation,
      version: (effectiveLocal(ref.state, ref.relationId) ?? ref.state.local).version,
      appVersion: app?.version ?? 0,
      lastSeq: rec ? rec.nextSeq - 1 : 0,
    };
    this.ctx.send(unit, msg);
  }

  receiveAck(m: AckMessage): void {
    this.acknowledge(m.rel, m.from, m.epoch, m.seq);
  }

  receivePull(m: PullMessage): void {
    const ref = findRelation(this.ctx.engine.knowledge, m.rel);
    if (!ref?.relation.units[m.from]) return;
    const id = linkId(m.rel, m.from);
    // A pull says what the receiver applied (everything before `expect`): an ack that cannot be lost with the data
    // messages' acks. Without it, a receiver that dropped its view (departed, then joined again) would be answered
    // with retransmissions it takes for duplicates, and never get the bag again.
    this.acknowledge(m.rel, m.from, m.epoch, m.expect - 1);
    const rec = this.usable(this.durableRecord(m.rel, m.from), ref.state.incarnation);
    const view = this.pendingView(id, rec) ?? this.base(undefined, id, m.rel, m.from, ref.state.incarnation, 0);
    switch (answerPull(view, ref.state, m)) {
      case 'retransmit':
        return this.retransmitNow(id);
      case 'send-current':
        return this.resend(ref, m.from);
      case 'nothing':
        return;
    }
  }

  private acknowledge(relationId: string, unit: string, epoch: number, seq: number): void {
    const rec = this.durableRecord(relationId, unit);
    if (!rec || rec.epoch !== epoch || seq < 1) return;
    const id = linkId(relationId, unit);
    const before = this.acked.get(id);
    const upTo = Math.min(seq, rec.nextSeq - 1);
    if (before?.epoch === epoch && before.seq >= upTo) return;
    this.acked.set(id, { epoch, seq: upTo });
    this.timers.resetBackoff(id);
    if ((this.pendingView(id, rec)?.outbox.length ?? 0) === 0) this.pause(id);
  }

  /** Queues the link's current bag under a new sequence number, in a run of its own (at most one waiting per link). */
  private resend(ref: RelationRef, unit: string): void {
    const id = linkId(ref.relationId, unit);
    if (this.resending.has(id) || this.ctx.isStopped()) return;
    this.resending.add(id);
    const done = (): void => void this.resending.delete(id);
    const { relationId, endpoint } = ref;
    this.ctx.engine
      .submit(internalEvent(LINK_RESEND_EVENT, { relationId, unit }), {
        // Pulls arrive in the middle of a burst of joins and first data (the remote side pulls
        // once its own `joined` commits): riding along keeps that burst one run.
        rideAlong: true,
        apply: (tx) => {
          const state = asEndpointState(tx.relationState(endpoint));
          if (state?.relations[relationId]?.units[unit]) this.stageQueue(tx, state, relationId, [unit], true);
        },
      })
      .then(done, (error: unknown) => {
        done();
        this.runFailed(error);
      });
  }

  /** A run this side submitted failed: reported, unless the engine stopped or the operator skipped it. */
  private runFailed(error: unknown): void {
    if (!(error instanceof EngineError && (error.code === 'ENGINE_ERR_STOPPED' || error.code === 'ENGINE_ERR_SKIPPED'))) this.ctx.onError(error);
  }

  /** Stages, on relation `relationId`'s links to `units`, a message with the current bag where it is newer (or `force`). */
  private stageQueue(tx: Transaction, state: EndpointState, relationId: string, units: readonly string[], force: boolean): void {
    const key = outboxKey(relationId);
    const records = asSendRecords(tx.relationState(key));
    let next: Record<string, SendRecord> | undefined;
    for (const unit of units) {
      const id = linkId(relationId, unit);
      const queued = queueData(this.base(records[unit], id, relationId, unit, state.incarnation), state, this.queueInput(state, relationId, unit, force));
      if (queued) (next ??= { ...records })[unit] = queued.record;
    }
    if (next) {
      const value = next;
      tx.updateRelationState(key, () => value as unknown as Json);
    }
  }

  private queueInput(state: EndpointState, relationId: string, unit: string, force: boolean) {
    return { relationId, from: this.ctx.unit, to: unit, force, maxOutbox: this.options.maxOutbox, ifaceVersion: this.options.ifaceVersion(state.interface) };
  }

  /**
   * The record to queue on: the stored one without what was acknowledged;
   * for a link without one (or one kept from an older endpoint incarnation:
   * the knowledge base was lost), a record an older version kept in its
   * link store, or a fresh one starting a new epoch.
   */
  private base(stored: SendRecord | undefined, id: string, relationId: string, unit: string, bagInc: number, epoch?: number): SendRecord {
    const rec = this.usable(stored, bagInc) ?? this.usable(this.options.legacyRecord(id), bagInc);
    if (rec) return this.pendingView(id, rec) ?? rec;
    return { relationId, remoteUnit: unit, epoch: epoch ?? this.options.incarnation(), bagInc, nextSeq: 1, queuedVersion: 0, queuedAppVersion: 0, outbox: [] };
  }

  private usable(rec: SendRecord | undefined, bagInc: number): SendRecord | undefined {
    return rec && rec.bagInc === bagInc && rec.epoch > 0 ? rec : undefined;
  }

  /** A record without the messages acknowledged since it was written. */
  private pendingView(id: string, rec: SendRecord | undefined): SendRecord | undefined {
    if (!rec) return undefined;
    const acked = this.acked.get(id);
    if (acked?.epoch !== rec.epoch || rec.outbox.length === 0 || rec.outbox[0]!.seq > acked.seq) return rec;
    return { ...rec, outbox: rec.outbox.filter((m) => m.seq > acked.seq) };
  }

  private durableRecord(relationId: string, unit: string): SendRecord | undefined {
    return asSendRecords(this.ctx.engine.knowledge.relations[outboxKey(relationId)])[unit];
  }

  /** Every durable send record: [link id, record]. */
  private records(): Array<[string, SendRecord]> {
    const out: Array<[string, SendRecord]> = [];
    const relations = this.ctx.engine.knowledge.relations;
    for (const key of Object.keys(relations)) {
      if (!key.startsWith(OUTBOX_PREFIX)) continue;
      const relationId = key.slice(OUTBOX_PREFIX.length);
      const records: SendRecords = asSendRecords(relations[key]);
      for (const [unit, rec] of Object.entries(records)) out.push([linkId(relationId, unit), rec]);
    }
    return out;
  }

  /** Sends the messages of a durable record that have not left yet, and arms the link's retransmission. */
  private sendNew(id: string, unit: string, rec: SendRecord): void {
    const sent = this.sent.get(id);
    const from = sent?.epoch === rec.epoch ? sent.seq : 0;
    if (rec.nextSeq - 1 <= from) return;
    this.sent.set(id, { epoch: rec.epoch, seq: rec.nextSeq - 1 });
    if (!this.ctx.canSend(unit)) return;
    for (const m of rec.outbox) if (m.seq > from) this.ctx.send(unit, m);
    this.armTimer(id, unit);
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

  private armTimer(id: string, unit: string): void {
    if (this.ctx.isStopped() || !this.ctx.canSend(unit)) return;
    this.timers.arm(id);
  }
}

/** [relation id, remote unit] of a link id (relation ids contain no "|"). */
function splitLinkId(id: string): [string, string] {
  const i = id.indexOf('|');
  return [id.slice(0, i), id.slice(i + 1)];
}
