/**
 * The relation manager: one per agent unit. It turns relation membership
 * (relate, join, depart, unrelate) into engine events, and runs one FIFO,
 * exactly-once link per (relation, remote unit) in each direction.
 *
 * Sending. A handler publishes by writing this unit's bag and bumping its
 * version in relation state (relation.ts); that write is part of the run's
 * commit. After every commit the manager compares, per link, the committed
 * bag version with the version it last queued (`LinkRecord.queuedVersion`)
 * and, if newer, appends one data message carrying the whole bag with the
 * link's next sequence number to the link's outbox, puts the record (durable)
 * and only then transmits. A crash between the commit and the put is
 * harmless: on start the same comparison runs again on the recovered
 * knowledge base and queues the message then. So the outgoing update is a
 * function of committed state, which is what "part of the commit" requires,
 * and a run that rolls back never sends anything. Unacknowledged messages
 * are retransmitted with exponential backoff (paused while the unit is
 * unreachable or departed, resumed at once when it comes back).
 *
 * Receiving. Data messages are buffered per link (LinkRecord.inbox) and
 * applied strictly in sequence order, one engine run each. The run's apply
 * step writes the new view of the remote bag AND the link's last applied
 * sequence number (`kb.relations['@links']`) in the same transaction, and
 * skips itself if that number already covers the message. The ack leaves
 * only after the submit promise resolves, i.e. after the commit is durable.
 * Hence, whatever crashes or duplicates occur:
 *   - a message is applied at most once (the applied number is committed
 *     with it, and checked inside the transaction);
 *   - it is applied at least once (no ack before commit; the sender keeps
 *     it and retransmits until acked);
 *   - in order (only seq = applied + 1 is ever applied; a gap waits).
 * Duplicates (seq <= applied) are dropped and re-acked, so a lost ack costs
 * one retransmission. A failing handler means no commit, so no ack: the
 * message waits, the engine retries and then waits for `resolve()`.
 *
 * Re-sync by state. Data messages carry the full bag and its version, and
 * views only move forward, so any later message supersedes the earlier
 * ones. On start, on join, when a unit becomes reachable again, and
 * periodically (anti-entropy, `syncIntervalMs`), the sender offers its
 * current version (`sync`); a receiver whose view is older and has nothing
 * newer buffered answers `pull`, and the sender retransmits its outbox or,
 * if that is empty, queues its current bag. A data message also carries
 * `base`, the lowest seq its sender still holds (recomputed on every
 * transmission): everything below was acknowledged, so a receiver that lost
 * its state may continue from there. With durable stores `base - 1` never
 * exceeds the receiver's applied number, so this never skips a message.
 *
 * Lost stores. Versions are (incarnation, version) pairs, the incarnation
 * stamped when an endpoint's state is created, so a unit that lost its
 * knowledge base publishes versions that order after its old ones. Sequence
 * numbers count within a link epoch, stamped when the sender creates the
 * link's record, so a sender that lost its link store starts a new epoch
 * that receivers follow, and stale messages or acks of an old epoch are
 * ignored. Views therefore converge to the last committed bags even if
 * messages or whole stores were lost (only exactly-once delivery of
 * superseded messages is given up then).
 *
 * All submissions go through one serial chain: each event is built from the
 * committed knowledge base when its turn comes, so the `changed` keys an
 * event announces are exactly those its apply step changes.
 */
import {
  EngineError,
  internalEvent,
  systemClock,
  type Clock,
  type Engine,
  type EngineEvent,
  type Json,
  type RunReport,
  type TimerHandle,
  type Transaction,
} from '@rhizome/engine';
import {
  covered,
  linkPosition,
  previewRemoteBag,
  remoteSchemas,
  stageLinkApplied,
  stageRelationBroken,
  stageRelationCreated,
  stageRemoteBag,
  stageUnitDeparted,
  stageUnitJoined,
  type RemoteBagUpdate,
} from './apply';
import { checkRelation } from './compat';
import { departedEvent } from './departing';
import { RelationError } from './errors';
import type { InterfaceRegistry } from './interface';
import { emptyLinkRecord, MemoryLinkStore, type LinkRecord, type LinkStore } from './link-store';
import { acknowledge, admit, answerPull, nextInOrder, queueData, retransmission, shouldPull } from './link-protocol';
import { parseLinkMessage, type AckMessage, type DataMessage, type LinkMessage, type PullMessage, type SyncMessage } from './messages';
import { endpointOf, type CharmMetadata } from './metadata';
import { asEndpointState, LINKS_KEY, linkId, type EndpointState, type LinkReceiveState, type RelationRecord } from './state';
import type { LinkTransport } from './transport';

/** Internal event of the run that creates a relation (payload: { endpoint, relationId, remoteService }). */
export const RELATION_CREATED_EVENT = 'relation.created';
/** Internal event of a run that only records a link message as applied (its bag was not newer). No charm should need it. */
export const LINK_SYNC_EVENT = 'relation.link-sync';

export interface RetransmitOptions {
  readonly baseMs: number;
  readonly maxMs: number;
  /** Messages resent per link per retransmission. */
  readonly window: number;
  /** Period of the anti-entropy round: a sync offer on every link, so views converge even if every other sync was lost. */
  readonly syncIntervalMs: number;
}

export interface RelationManagerOptions {
  /** This unit, e.g. `hdfs-datanode/0`; the service is the part before "/". */
  readonly unit: string;
  readonly metadata: CharmMetadata;
  readonly interfaces: InterfaceRegistry;
  /** The unit's engine, built with `relationModel: relationsModel`. */
  readonly engine: Engine;
  readonly transport: LinkTransport;
  /** Durable in production (the agent's); defaults to an in-memory store. */
  readonly store?: LinkStore;
  readonly clock?: Clock;
  readonly retransmit?: Partial<RetransmitOptions>;
  /** Messages buffered per link before further ones are dropped (their sender retransmits). */
  readonly maxInbox?: number;
  /**
   * Unacknowledged messages kept per link. Beyond, the oldest are dropped:
   * each message carries the whole bag, so a later one supersedes them, and
   * the receiver skips past them (`base`). Bounds memory and storage while a
   * unit is unreachable and this one keeps publishing.
   */
  readonly maxOutbox?: number;
  /**
   * Stamps a new endpoint state's incarnation (state.ts) and a new link
   * record's epoch (link-store.ts); must exceed every stamp this unit used
   * before, even across a loss of its stores. Default: wall-clock milliseconds.
   */
  readonly incarnation?: () => number;
  /** Called after a link message was applied and committed. */
  readonly onApplied?: (info: AppliedInfo) => void;
  /** Called for messages refused at the boundary and for unexpected internal errors. */
  readonly onError?: (error: unknown) => void;
}

export interface AppliedInfo {
  readonly relationId: string;
  readonly from: string;
  readonly seq: number;
  readonly version: number;
  /** Keys the message changed ([] when its bag was not newer). */
  readonly keys: readonly string[];
  /** True when the operator skipped the run: the message was consumed without effect. */
  readonly skipped: boolean;
}

export interface AddRelationSpec {
  readonly id: string;
  /** This charm's endpoint. */
  readonly endpoint: string;
  readonly remoteService: string;
  readonly remoteEndpoint: string;
  /** The remote charm's metadata, to check compatibility; may be left out for a relation with the own service (peers). */
  readonly remoteMetadata?: CharmMetadata;
}

export interface LinkStatus {
  readonly linkId: string;
  readonly relationId: string;
  readonly remoteUnit: string;
  readonly nextSeq: number;
  readonly unacked: number;
  readonly buffered: number;
  readonly applied: number;
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

export const DEFAULT_RELATION_MANAGER_OPTIONS = Object.freeze({
  // Enough for a burst of publishes across a partition; beyond, the sender's retransmits fill the gap later.
  maxInbox: 256,
  // Same bound on the sending side; only superseded bags are ever dropped.
  maxOutbox: 256,
});

interface RelationRef {
  readonly relationId: string;
  readonly endpoint: string;
  readonly state: EndpointState;
  readonly relation: RelationRecord;
}

interface LinkTimer {
  handle: TimerHandle | undefined;
  delay: number;
}

export class RelationManager {
  readonly unit: string;
  readonly service: string;
  private readonly metadata: CharmMetadata;
  private readonly interfaces: InterfaceRegistry;
  private readonly engine: Engine;
  private readonly transport: LinkTransport;
  private readonly store: LinkStore;
  private readonly clock: Clock;
  private readonly retransmitOptions: RetransmitOptions;
  private readonly maxInbox: number;
  private readonly maxOutbox: number;
  private readonly onApplied: RelationManagerOptions['onApplied'];
  private readonly incarnation: () => number;
  private readonly onError: (error: unknown) => void;

  private chain: Promise<unknown> = Promise.resolve();
  private readonly unreachable = new Set<string>();
  private readonly timers = new Map<string, LinkTimer>();
  private readonly draining = new Set<string>();
  private readonly drainAgain = new Set<string>();
  private readonly unsubscribe: Array<() => void> = [];
  private started = false;
  private stopped = false;
  private syncTimer: TimerHandle | undefined;

  constructor(options: RelationManagerOptions) {
    if (typeof options.unit !== 'string' || !/^[a-z][a-z0-9-]*\/\d+$/.test(options.unit)) {
      throw new RelationError('REL_ERR_OPTIONS', `unit must look like "service/0", got ${JSON.stringify(options.unit)}`);
    }
    this.unit = options.unit;
    this.service = options.unit.split('/')[0]!;
    this.metadata = options.metadata;
    this.interfaces = options.interfaces;
    for (const ep of Object.values(options.metadata.endpoints)) options.interfaces.get(ep.interface);
    this.engine = options.engine;
    this.transport = options.transport;
    this.store = options.store ?? new MemoryLinkStore();
    this.clock = options.clock ?? systemClock;
    const r = { ...DEFAULT_RETRANSMIT_OPTIONS, ...options.retransmit };
    if (!(r.baseMs > 0 && r.maxMs >= r.baseMs && Number.isInteger(r.window) && r.window >= 1 && r.syncIntervalMs > 0)) {
      throw new RelationError('REL_ERR_OPTIONS', `retransmit needs 0 < baseMs <= maxMs, window >= 1 and syncIntervalMs > 0, got ${JSON.stringify(r)}`);
    }
    this.retransmitOptions = Object.freeze(r);
    this.maxInbox = options.maxInbox ?? DEFAULT_RELATION_MANAGER_OPTIONS.maxInbox;
    this.maxOutbox = options.maxOutbox ?? DEFAULT_RELATION_MANAGER_OPTIONS.maxOutbox;
    for (const [name, v] of [['maxInbox', this.maxInbox], ['maxOutbox', this.maxOutbox]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RelationError('REL_ERR_OPTIONS', `${name} must be a positive integer, got ${String(v)}`);
    }
    this.onApplied = options.onApplied;
    this.incarnation = options.incarnation ?? Date.now;
    this.onError = options.onError ?? (() => undefined);
  }

  /**
   * Starts listening, then recovers: queues messages for committed bag
   * versions not yet queued, retransmits unacknowledged messages, applies
   * buffered ones and offers a sync on every link.
   */
  start(): void {
    if (this.stopped) throw new RelationError('REL_ERR_STOPPED', 'this relation manager was stopped; create a new one (e.g. after a restart)');
    if (this.started) return;
    this.started = true;
    this.unsubscribe.push(this.transport.onMessage((from, message) => this.receive(from, message)));
    if (this.transport.onReachability) this.unsubscribe.push(this.transport.onReachability((unit, reachable) => this.setReachable(unit, reachable)));
    this.unsubscribe.push(this.engine.onReport((report) => this.afterRun(report)));
    this.reconcile();
    for (const id of this.store.keys()) {
      const rec = this.store.get(id);
      if (!rec) continue;
      if (rec.outbox.length > 0) this.retransmitNow(id);
      if (rec.inbox.length > 0) this.drain(id);
    }
    this.forEachJoined((ref, unit) => this.sendSync(ref, unit));
    this.scheduleSyncRound();
  }

  private scheduleSyncRound(): void {
    if (this.stopped) return;
    this.syncTimer = this.clock.setTimeout(() => {
      this.syncTimer = undefined;
      if (this.stopped) return;
      this.forEachJoined((ref, unit) => this.sendSync(ref, unit));
      this.scheduleSyncRound();
    }, this.retransmitOptions.syncIntervalMs);
  }

  /** Stops timers and listeners. Work in progress finishes inside the engine, but nothing more is sent or stored. */
  stop(): void {
    this.stopped = true;
    for (const u of this.unsubscribe.splice(0)) u();
    for (const t of this.timers.values()) if (t.handle !== undefined) this.clock.clearTimeout(t.handle);
    this.timers.clear();
    if (this.syncTimer !== undefined) this.clock.clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
  }

  /** Resolves when every submission made so far has run (or failed). */
  async settled(): Promise<void> {
    for (;;) {
      const c = this.chain;
      await c;
      if (c === this.chain) return;
    }
  }

  /**
   * Establishes a relation on one of this charm's endpoints, after checking
   * that it can be related to the remote endpoint. Runs `relation.created`.
   *
   * @example
   * await manager.addRelation({ id: 'rel-1', endpoint: 'namenode', remoteService: 'hdfs-namenode', remoteEndpoint: 'datanode', remoteMetadata: namenodeMeta });
   */
  addRelation(spec: AddRelationSpec): Promise<RunReport | undefined> {
    this.assertRunning();
    if (typeof spec.id !== 'string' || spec.id.length === 0 || spec.id.includes('|') || spec.id.length > 128) {
      throw new RelationError('REL_ERR_OPTIONS', `relation id must be a non-empty string without "|", up to 128 characters, got ${JSON.stringify(spec.id)}`);
    }
    const remoteMetadata = spec.remoteMetadata ?? (spec.remoteService === this.service ? this.metadata : undefined);
    if (!remoteMetadata) {
      throw new RelationError('REL_ERR_OPTIONS', `addRelation(${spec.id}) needs remoteMetadata (the charm metadata of ${spec.remoteService}) to check that ${spec.endpoint} and ${spec.remoteEndpoint} are compatible`);
    }
    const checked = checkRelation(
      { service: this.service, endpoint: spec.endpoint, metadata: this.metadata },
      { service: spec.remoteService, endpoint: spec.remoteEndpoint, metadata: remoteMetadata },
      this.interfaces,
    );
    const existing = this.findRelation(spec.id);
    if (existing && (existing.endpoint !== spec.endpoint || existing.relation.remoteService !== spec.remoteService)) {
      throw new RelationError('REL_ERR_DUPLICATE_RELATION', `relation id "${spec.id}" is already used by ${existing.endpoint} <-> ${existing.relation.remoteService}; pick another id`);
    }
    const ep = checked.a;
    return this.serial(async () => {
      if (this.findRelation(spec.id)) return undefined;
      const state = asEndpointState(this.engine.knowledge.relations[ep.name]);
      const count = Object.keys(state?.relations ?? {}).length;
      if (ep.limit !== undefined && count >= ep.limit) {
        throw new RelationError('REL_ERR_INCOMPATIBLE', `endpoint "${ep.name}" allows ${ep.limit} relation(s) and already has ${count}; remove one first`);
      }
      const iface = this.interfaces.get(ep.interface);
      return this.engine.submit(internalEvent(RELATION_CREATED_EVENT, { endpoint: ep.name, relationId: spec.id, remoteService: spec.remoteService }), {
        apply: (tx) =>
          void stageRelationCreated(tx, {
            endpoint: ep.name,
            relationId: spec.id,
            remoteService: spec.remoteService,
            remoteEndpoint: spec.remoteEndpoint,
            role: ep.role,
            interface: iface,
            unit: this.unit,
            incarnation: this.incarnation(),
          }),
      });
    });
  }

  /** A remote unit joined the relation (the agent saw it in the mesh): runs `joined`. */
  unitJoined(relationId: string, unit: string): Promise<RunReport | undefined> {
    this.assertRunning();
    if (unit === this.unit) {
      throw new RelationError('REL_ERR_OPTIONS', `unit ${unit} cannot join its own relation ${relationId} as a remote unit; announce only the other units (for peers: the other units of the service)`);
    }
    return this.serial(async () => {
      const report = await this.submitJoined(relationId, unit, true);
      if (this.stopped) return report;
      const ref = this.findRelation(relationId);
      if (ref?.relation.units[unit]) {
        this.sendSync(ref, unit);
        this.sendPull(ref, unit);
        this.retransmitNow(linkId(relationId, unit));
        this.drain(linkId(relationId, unit));
      }
      return report;
    });
  }

  /** A remote unit left or was declared failed by the mesh: runs `departed`, whose handlers can read its last bag (`departing()`). */
  unitDeparted(relationId: string, unit: string): Promise<RunReport | undefined> {
    this.assertRunning();
    return this.serial(async () => {
      const ref = this.requireRelation(relationId);
      if (!ref.relation.units[unit]) return undefined;
      this.pauseTimer(linkId(relationId, unit));
      // The event carries the unit's last bag, from the committed view the apply step removes (departing.ts).
      return this.engine.submit(departedEvent(ref.state, ref.endpoint, relationId, unit), {
        apply: (tx) => void stageUnitDeparted(tx, ref.endpoint, relationId, unit),
      });
    });
  }

  /** The relation was removed: runs `broken` and forgets its links. */
  removeRelation(relationId: string): Promise<RunReport | undefined> {
    this.assertRunning();
    return this.serial(async () => {
      const ref = this.findRelation(relationId);
      if (!ref) return undefined;
      const report = await this.engine.submit(
        { kind: 'relation', endpoint: ref.endpoint, name: 'broken', payload: { relationId, remoteService: ref.relation.remoteService } },
        { apply: (tx) => void stageRelationBroken(tx, ref.endpoint, relationId) },
      );
      if (this.stopped) return report;
      for (const id of this.store.keys()) {
        if (!id.startsWith(`${relationId}|`)) continue;
        this.pauseTimer(id);
        this.timers.delete(id);
        this.store.delete(id);
      }
      return report;
    });
  }

  /** The mesh's view of a unit: unreachable pauses retransmission to it; reachable again resends and re-syncs at once. */
  setReachable(unit: string, reachable: boolean): void {
    if (this.stopped) return;
    if (!reachable) {
      this.unreachable.add(unit);
      for (const id of this.store.keys()) if (id.endsWith(`|${unit}`)) this.pauseTimer(id);
      return;
    }
    if (!this.unreachable.delete(unit)) return;
    this.forEachJoined((ref, u, relationId) => {
      if (u !== unit) return;
      const id = linkId(relationId, u);
      const t = this.timers.get(id);
      if (t) t.delay = this.retransmitOptions.baseMs;
      this.retransmitNow(id);
      this.sendSync(ref, u);
      this.sendPull(ref, u);
    });
  }

  /** Per-link counters, for status and tests. */
  linkStatus(): LinkStatus[] {
    const links = this.engine.knowledge.relations[LINKS_KEY];
    return this.store.keys().map((id) => {
      const rec = this.store.get(id)!;
      return { linkId: id, relationId: rec.relationId, remoteUnit: rec.remoteUnit, nextSeq: rec.nextSeq, unacked: rec.outbox.length, buffered: rec.inbox.length, applied: linkPosition(links, id).applied };
    });
  }

  // ---- submissions -------------------------------------------------------

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.chain.then(() => {
      if (this.stopped) throw new RelationError('REL_ERR_STOPPED', 'relation manager stopped');
      return op();
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private assertRunning(): void {
    if (this.stopped) throw new RelationError('REL_ERR_STOPPED', 'this relation manager was stopped; create a new one (e.g. after a restart)');
  }

  private async submitJoined(relationId: string, unit: string, explicit: boolean): Promise<RunReport | undefined> {
    const ref = this.requireRelation(relationId);
    if (ref.relation.units[unit]) return undefined;
    if (!explicit && ref.relation.departed.includes(unit)) return undefined;
    const schemas = remoteSchemas(this.interfaces.get(ref.state.interface), ref.state.role);
    return this.engine.submit(
      { kind: 'relation', endpoint: ref.endpoint, name: 'joined', unit, payload: { relationId, remoteService: ref.relation.remoteService } },
      { apply: (tx) => void stageUnitJoined(tx, ref.endpoint, relationId, unit, schemas) },
    );
  }

  // ---- sending -----------------------------------------------------------

  private afterRun(report: RunReport): void {
    if (this.stopped || report.outcome !== 'committed') return;
    const endpoints = report.relationsChanged.filter((e) => e !== LINKS_KEY);
    if (endpoints.length > 0) this.reconcile(endpoints);
  }

  /** Queues a data message on every link whose committed local bag (or app bag) is newer than what it last queued. */
  private reconcile(endpoints?: readonly string[]): void {
    const kb = this.engine.knowledge;
    for (const endpoint of endpoints ?? Object.keys(kb.relations)) {
      const state = asEndpointState(kb.relations[endpoint]);
      if (!state) continue;
      for (const [relationId, rel] of Object.entries(state.relations)) {
        for (const unit of Object.keys(rel.units)) this.queueIfNewer(state, relationId, unit, false);
      }
    }
  }

  private queueIfNewer(state: EndpointState, relationId: string, unit: string, force: boolean): void {
    const id = linkId(relationId, unit);
    const rec = this.sendRecord(id, relationId, unit, state.incarnation);
    const queued = queueData(rec, state, { relationId, from: this.unit, to: unit, force, maxOutbox: this.maxOutbox });
    if (!queued) return;
    // Durable first, then on the wire.
    this.store.put(id, queued.record);
    if (this.canSend(unit)) this.transport.send(unit, queued.message);
    this.armTimer(id, unit);
  }

  /**
   * A link's record for sending bags of endpoint incarnation `bagInc`. A
   * missing record, or one kept from an older incarnation (the knowledge
   * base was lost, the store was not), starts a new epoch; its receive
   * inbox is kept. Stored at once, so the epoch is stable.
   */
  private sendRecord(id: string, relationId: string, unit: string, bagInc: number): LinkRecord {
    const rec = this.store.get(id);
    if (rec && rec.bagInc === bagInc && rec.epoch > 0) return rec;
    const fresh: LinkRecord = { ...emptyLinkRecord(relationId, unit, this.incarnation(), bagInc), inbox: rec?.inbox ?? [] };
    this.store.put(id, fresh);
    return fresh;
  }

  private receivePosition(id: string): LinkReceiveState {
    return linkPosition(this.engine.knowledge.relations[LINKS_KEY], id);
  }

  private canSend(unit: string): boolean {
    return !this.stopped && !this.unreachable.has(unit);
  }

  private armTimer(id: string, unit: string): void {
    if (this.stopped || !this.canSend(unit)) return;
    let t = this.timers.get(id);
    if (!t) {
      t = { handle: undefined, delay: this.retransmitOptions.baseMs };
      this.timers.set(id, t);
    }
    if (t.handle !== undefined) return;
    const timer = t;
    timer.handle = this.clock.setTimeout(() => {
      timer.handle = undefined;
      if (this.stopped) return;
      timer.delay = Math.min(this.retransmitOptions.maxMs, timer.delay * 2);
      this.retransmitNow(id);
    }, timer.delay);
  }

  private pauseTimer(id: string): void {
    const t = this.timers.get(id);
    if (t?.handle !== undefined) this.clock.clearTimeout(t.handle);
    if (t) t.handle = undefined;
  }

  /** Resends the head of a link's outbox (if the unit is live) and re-arms its timer. */
  private retransmitNow(id: string): void {
    if (this.stopped) return;
    const rec = this.store.get(id);
    if (!rec || rec.outbox.length === 0) {
      this.pauseTimer(id);
      return;
    }
    const ref = this.findRelation(rec.relationId);
    if (!ref?.relation.units[rec.remoteUnit] || !this.canSend(rec.remoteUnit)) {
      this.pauseTimer(id);
      return;
    }
    for (const m of retransmission(rec, this.retransmitOptions.window)) this.transport.send(rec.remoteUnit, m);
    this.pauseTimer(id);
    this.armTimer(id, rec.remoteUnit);
  }

  private sendSync(ref: RelationRef, unit: string): void {
    if (!this.canSend(unit)) return;
    const rec = this.sendRecord(linkId(ref.relationId, unit), ref.relationId, unit, ref.state.incarnation);
    const app = ref.state.role === 'peers' ? ref.state.app : undefined;
    const msg: SyncMessage = {
      v: 1,
      type: 'sync',
      rel: ref.relationId,
      from: this.unit,
      to: unit,
      epoch: rec.epoch,
      inc: ref.state.incarnation,
      version: ref.state.local.version,
      appVersion: app?.version ?? 0,
      lastSeq: rec.nextSeq - 1,
    };
    this.transport.send(unit, msg);
  }

  private sendPull(ref: RelationRef, unit: string): void {
    if (!this.canSend(unit)) return;
    const relationId = ref.relationId;
    const view = ref.relation.units[unit];
    const pos = this.receivePosition(linkId(relationId, unit));
    const msg: PullMessage = {
      v: 1,
      type: 'pull',
      rel: relationId,
      from: this.unit,
      to: unit,
      epoch: pos.epoch,
      expect: pos.applied + 1,
      viewInc: view?.incarnation ?? 0,
      version: view?.version ?? 0,
    };
    this.transport.send(unit, msg);
  }

  private sendAck(relationId: string, to: string, epoch: number, seq: number): void {
    if (!this.canSend(to) || seq < 1) return;
    const msg: AckMessage = { v: 1, type: 'ack', rel: relationId, from: this.unit, to, epoch, seq };
    this.transport.send(to, msg);
  }

  // ---- receiving ---------------------------------------------------------

  private receive(from: string, raw: unknown): void {
    if (this.stopped) return;
    let m: LinkMessage;
    try {
      m = parseLinkMessage(raw);
    } catch (error) {
      this.onError(error);
      return;
    }
    // Ignore messages not meant for us, or claiming another sender.
    if (m.to !== this.unit || m.from !== from || from === this.unit) {
      this.onError(new RelationError('REL_ERR_BAD_MESSAGE', `message from ${from} claims to be from ${m.from} to ${m.to}; this is ${this.unit}`));
      return;
    }
    try {
      switch (m.type) {
        case 'data':
          return this.receiveData(m);
        case 'ack':
          return this.receiveAck(m);
        case 'sync':
          return this.receiveSync(m);
        case 'pull':
          return this.receivePull(m);
      }
    } catch (error) {
      this.onError(error);
    }
  }

  private receiveData(m: DataMessage): void {
    // Unknown relation (not created here yet, or removed): no ack, the sender retries.
    if (!this.findRelation(m.rel)) return;
    const id = linkId(m.rel, m.from);
    const admission = admit(this.store.get(id) ?? emptyLinkRecord(m.rel, m.from), this.receivePosition(id), m, this.maxInbox);
    switch (admission.kind) {
      case 'duplicate':
        if (admission.ack !== undefined) this.sendAck(m.rel, m.from, m.epoch, admission.ack);
        return;
      case 'full':
        return;
      case 'buffered':
        if (admission.record) this.store.put(id, admission.record);
        this.drain(id);
        return;
    }
  }

  private receiveAck(m: AckMessage): void {
    const id = linkId(m.rel, m.from);
    const rec = this.store.get(id);
    const next = rec && acknowledge(rec, m);
    if (!next) return;
    this.store.put(id, next);
    const t = this.timers.get(id);
    if (t) t.delay = this.retransmitOptions.baseMs;
    if (next.outbox.length === 0) this.pauseTimer(id);
  }

  private receiveSync(m: SyncMessage): void {
    const ref = this.findRelation(m.rel);
    const view = ref?.relation.units[m.from];
    if (!ref || !view) return;
    const id = linkId(m.rel, m.from);
    if (shouldPull(view, ref.state.app?.version ?? 0, this.receivePosition(id), this.store.get(id)?.inbox ?? [], m)) this.sendPull(ref, m.from);
  }

  private receivePull(m: PullMessage): void {
    const ref = this.findRelation(m.rel);
    if (!ref?.relation.units[m.from]) return;
    const id = linkId(m.rel, m.from);
    const rec = this.sendRecord(id, m.rel, m.from, ref.state.incarnation);
    switch (answerPull(rec, ref.state, m)) {
      case 'retransmit':
        return this.retransmitNow(id);
      case 'send-current':
        return this.queueIfNewer(ref.state, m.rel, m.from, true);
      case 'nothing':
        return;
    }
  }

  private drain(id: string): void {
    if (this.stopped) return;
    if (this.draining.has(id)) {
      this.drainAgain.add(id);
      return;
    }
    this.draining.add(id);
    this.serial(() => this.applyNext(id)).then(
      (progressed) => {
        this.draining.delete(id);
        if (this.drainAgain.delete(id) || progressed) this.drain(id);
      },
      (error: unknown) => {
        this.draining.delete(id);
        this.drainAgain.delete(id);
        if (!isStopped(error)) this.onError(error);
      },
    );
  }

  /** Applies the next in-order buffered message of a link as one run; false when there is none (empty, or a gap). */
  private async applyNext(id: string): Promise<boolean> {
    const rec = this.store.get(id);
    if (!rec || rec.inbox.length === 0) return false;
    const { inbox, next: m } = nextInOrder(rec.inbox, this.receivePosition(id));
    if (inbox.length !== rec.inbox.length) this.store.put(id, { ...rec, inbox });
    if (!m) return false;
    let ref = this.findRelation(m.rel);
    if (!ref) return false;
    if (!ref.relation.units[m.from]) {
      // Data from a unit the mesh has not announced yet: it evidently joined.
      // From a unit that departed: hold it (unacked) until it joins again.
      if (ref.relation.departed.includes(m.from)) return false;
      await this.submitJoined(m.rel, m.from, false);
      if (this.stopped) return false;
      ref = this.findRelation(m.rel);
      if (!ref?.relation.units[m.from]) return false;
    }
    const update: RemoteBagUpdate = { endpoint: ref.endpoint, relationId: m.rel, unit: m.from, bag: m.bag, incarnation: m.inc, version: m.version, ...(m.app ? { app: m.app } : {}) };
    const keys = previewRemoteBag(ref.state as unknown as Json, update);
    const schemas = remoteSchemas(this.interfaces.get(ref.state.interface), ref.state.role);
    const apply = (tx: Transaction): void => {
      // Exactly once: the applied number is committed with the bag, and checked here, inside the transaction.
      if (covered(linkPosition(tx.relationState(LINKS_KEY), id), m.epoch, m.seq)) return;
      stageRemoteBag(tx, update, schemas);
      stageLinkApplied(tx, id, m.epoch, m.seq);
    };
    const event: EngineEvent =
      keys.length > 0
        ? { kind: 'relation', endpoint: ref.endpoint, name: 'changed', unit: m.from, keys, payload: { relationId: m.rel, seq: m.seq, version: m.version } }
        : internalEvent(LINK_SYNC_EVENT, { relationId: m.rel, unit: m.from, seq: m.seq });
    let skipped = false;
    try {
      await this.engine.submit(event, { apply });
    } catch (error) {
      if (!(error instanceof EngineError && error.code === 'ENGINE_ERR_SKIPPED')) throw error;
      // The operator skipped the run: consume the message without its effect (a later message carries a newer bag anyway).
      skipped = true;
      await this.engine.submit(internalEvent(LINK_SYNC_EVENT, { relationId: m.rel, unit: m.from, seq: m.seq, skipped: true }), {
        apply: (tx) => stageLinkApplied(tx, id, m.epoch, m.seq),
      });
    }
    if (this.stopped) return false;
    const after = this.store.get(id);
    const done: LinkReceiveState = { epoch: m.epoch, applied: m.seq };
    if (after) this.store.put(id, { ...after, inbox: after.inbox.filter((x) => !covered(done, x.epoch, x.seq)) });
    this.sendAck(m.rel, m.from, m.epoch, m.seq);
    try {
      this.onApplied?.({ relationId: m.rel, from: m.from, seq: m.seq, version: m.version, keys: skipped ? [] : keys, skipped });
    } catch (error) {
      this.onError(error);
    }
    return true;
  }

  // ---- lookups -----------------------------------------------------------

  private findRelation(relationId: string): RelationRef | undefined {
    const kb = this.engine.knowledge;
    for (const [endpoint, raw] of Object.entries(kb.relations)) {
      const state = asEndpointState(raw);
      const relation = state?.relations[relationId];
      if (state && relation) return { relationId, endpoint, state, relation };
    }
    return undefined;
  }

  private requireRelation(relationId: string): RelationRef {
    const ref = this.findRelation(relationId);
    if (!ref) throw new RelationError('REL_ERR_UNKNOWN_RELATION', `unit ${this.unit} has no relation "${relationId}"; add it with addRelation() first`);
    return ref;
  }

  private forEachJoined(fn: (ref: RelationRef, unit: string, relationId: string) => void): void {
    const kb = this.engine.knowledge;
    for (const [endpoint, raw] of Object.entries(kb.relations)) {
      const state = asEndpointState(raw);
      if (!state) continue;
      for (const [relationId, relation] of Object.entries(state.relations)) {
        for (const unit of Object.keys(relation.units)) fn({ relationId, endpoint, state, relation }, unit, relationId);
      }
    }
  }

  /** The endpoint spec of this charm, for callers that want to check before relating. */
  endpoint(name: string) {
    return endpointOf(this.metadata, name);
  }
}

function isStopped(error: unknown): boolean {
  return (error instanceof RelationError && error.code === 'REL_ERR_STOPPED') || (error instanceof EngineError && error.code === 'ENGINE_ERR_STOPPED');
}
