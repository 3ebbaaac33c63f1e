/**
 * The relation manager: one per agent unit. It turns relation membership
 * (relate, join, depart, unrelate) into engine events, and runs one FIFO,
 * exactly-once link per (relation, remote unit) in each direction. Each
 * link has two halves, wired together here: internal/link-sender.ts (outbox,
 * sequence numbers, retransmission, acks, sync offers) and internal/link-receiver.ts
 * (in-order delivery, dedupe, applying a message as an engine run, holding
 * messages from departed units). The manager routes incoming messages to
 * them and tells them about joins, departures and reachability.
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
 * link's send record (in the knowledge base), so a sender that lost its
 * state starts a new epoch that receivers follow, and stale messages or
 * acks of an old epoch are ignored. Views therefore converge to the last committed bags even if
 * messages or whole stores were lost (only exactly-once delivery of
 * superseded messages is given up then).
 *
 * All submissions go through one serial chain: each event is built from the
 * knowledge base when its turn comes, so the `changed` keys an event
 * announces are exactly those its apply step changes. `joined` and data
 * runs hold the chain only until they are queued in the engine, not until
 * they commit: the engine's FIFO keeps their order, and a burst (units
 * joining, their first data) meets in the engine's inbox and is applied in
 * one run (a remote unit's `joined` and its first `changed` together, as
 * Juju fires relation-changed right after relation-joined). A data message
 * from a unit whose `joined` is queued is queued right behind it, previewed
 * against the view that `joined` creates. Submissions built from the state
 * of a unit (departed, forget, broken, created) first wait for everything
 * queued before them to run.
 */
import { systemClock } from '@rhizome/clock';
import { internalEvent, type Engine, type RunReport } from '@rhizome/engine';
import { linkPosition, remoteSchemas, stageRelationBroken, stageRelationCreated, stageSendRecordDropped, stageUnitDeparted, stageUnitJoined, stageUnitReaped } from './internal/apply';
import { checkRelation } from './compat';
import { departedEvent } from './internal/departing';
import { RelationError } from './errors';
import type { InterfaceRegistry } from './interface';
import type { LinkContext } from './internal/link-context';
import { DEFAULT_PLAUSIBILITY } from './internal/link-protocol';
import { LinkReceiver } from './internal/link-receiver';
import { LinkSender } from './internal/link-sender';
import { MemoryLinkStore, type LinkStore } from './link-store';
import { parseLinkMessage, type LinkMessage, type OutgoingLinkMessage } from './messages';
import { LinkVersions } from './internal/link-versions';
import { resolveManagerOptions, type AddRelationSpec, type LinkStatus, type RelationManagerOptions } from './manager-options';
import { endpointOf, type CharmMetadata } from './metadata';
import { findRelation, forEachJoined, type RelationRef } from './internal/relation-lookup';
import { asEndpointState, LINKS_KEY, linkId } from './state';
import type { SendRecord } from './send-record';
import type { LinkTransport } from './transport';

export { LINK_SYNC_EVENT, type AppliedInfo } from './internal/link-receiver';
export { LINK_RESEND_EVENT } from './internal/link-sender';
export { DEFAULT_RETRANSMIT_OPTIONS, type RetransmitOptions } from './internal/retransmit-timers';
export { DEFAULT_RELATION_MANAGER_OPTIONS, type AddRelationSpec, type LinkStatus, type RelationManagerOptions } from './manager-options';

/** Internal event of the run that creates a relation (payload: { endpoint, relationId, remoteService }). */
export const RELATION_CREATED_EVENT = 'relation.created';
/** Internal event of the run that forgets a unit removed for good (`forgetUnit`). */
export const UNIT_REAPED_EVENT = 'relation.unit-reaped';

export class RelationManager {
  readonly unit: string;
  readonly service: string;
  private readonly metadata: CharmMetadata;
  private readonly interfaces: InterfaceRegistry;
  private readonly engine: Engine;
  private readonly transport: LinkTransport;
  private readonly store: LinkStore;
  private readonly incarnation: () => number;
  private readonly onError: (error: unknown) => void;
  private readonly sender: LinkSender;
  private readonly receiver: LinkReceiver;

  private chain: Promise<unknown> = Promise.resolve();
  /** Submissions queued in the engine and not settled yet (joins and data runs): see quiesce(). */
  private readonly queued = new Set<Promise<unknown>>();
  /** Per link: the `joined` queued in the engine and not settled yet. */
  private readonly pendingJoins = new Map<string, Promise<RunReport | undefined>>();
  /** The link protocol version to write to each remote unit (learned from its messages; dropped by forgetUnit). */
  private readonly versions: LinkVersions;
  private readonly unreachable = new Set<string>();
  private readonly unsubscribe: Array<() => void> = [];
  private started = false;
  private stopped = false;

  constructor(options: RelationManagerOptions) {
    const { retransmit: r, maxInbox, maxOutbox, protocol } = resolveManagerOptions(options);
    this.unit = options.unit;
    this.service = options.unit.split('/')[0]!;
    this.metadata = options.metadata;
    this.interfaces = options.interfaces;
    for (const ep of Object.values(options.metadata.endpoints)) options.interfaces.get(ep.interface);
    this.engine = options.engine;
    this.transport = options.transport;
    this.store = options.store ?? new MemoryLinkStore();
    this.incarnation = options.incarnation ?? Date.now;
    this.onError = options.onError ?? (() => undefined);
    this.versions = new LinkVersions(this.unit, protocol, this.onError);
    const ctx: LinkContext = {
      unit: this.unit,
      engine: this.engine,
      transport: this.transport,
      send: (unit, message) => {
        if (!this.stopped) this.sendStamped(unit, message);
      },
      isStopped: () => this.stopped,
      canSend: (unit) => !this.stopped && !this.unreachable.has(unit),
      onError: (error) => this.onError(error),
    };
    this.sender = new LinkSender(ctx, {
      clock: options.clock ?? systemClock,
      retransmit: r,
      maxOutbox,
      incarnation: this.incarnation,
      ifaceVersion: (name) => this.interfaces.get(name).version,
      legacyRecord: (id) => {
        const rec = this.store.get(id);
        if (!rec) return undefined;
        const { inbox: _inbox, ...send } = rec;
        return send satisfies SendRecord;
      },
    });
    // From construction, not start: a run that commits before start() has numbered its messages (start sends them).
    this.unsubscribe.push(this.engine.beforeCommit((tx, changed) => this.sender.stageOutgoing(tx, changed)));
    this.receiver = new LinkReceiver(ctx, {
      interfaces: this.interfaces,
      maxInbox,
      onApplied: options.onApplied,
      serial: (op) => this.serial(op),
      joinFromData: (relationId, unit) => this.queueJoined(relationId, unit, false) !== undefined,
      joinPending: (relationId, unit) => this.pendingJoins.has(linkId(relationId, unit)),
      track: (submitted) => this.track(submitted),
      now: options.now ?? Date.now,
      plausibility: { ...DEFAULT_PLAUSIBILITY, ...options.plausibility },
    });
  }

  /**
   * Starts listening, then recovers: retransmits every durable outbox,
   * adopts what an older version kept in the link store, queues (in a run)
   * committed bag versions no link queued yet, and offers a sync on every
   * link.
   */
  start(): void {
    if (this.stopped) throw new RelationError('REL_ERR_STOPPED', 'this relation manager was stopped; create a new one (e.g. after a restart)');
    if (this.started) return;
    this.started = true;
    this.unsubscribe.push(this.transport.onMessage((from, message) => this.receive(from, message)));
    if (this.transport.onReachability) this.unsubscribe.push(this.transport.onReachability((unit, reachable) => this.setReachable(unit, reachable)));
    // After the commit, not on the report hook: reports are for logs, and a
    // listener error here reaches the engine's onError instead of vanishing.
    this.unsubscribe.push(this.engine.afterCommit((commit) => this.sender.afterCommit(commit)));
    this.sender.resendAll();
    const legacy: string[] = [];
    for (const id of this.store.keys()) {
      const rec = this.store.get(id);
      if (!rec) continue;
      // Written by an older version, which persisted the receive buffer: the receiver keeps it in memory now.
      if (rec.inbox.length > 0) this.receiver.adopt(id, rec.inbox);
      const [relationId = '', unit = ''] = id.split('|');
      if (rec.nextSeq > 1 && !this.sender.hasRecord(relationId, unit)) legacy.push(id);
      else this.store.delete(id);
    }
    this.sender.recover(legacy, () => {
      if (!this.stopped) for (const id of legacy) this.store.delete(id);
    });
    this.sender.startSyncRounds();
  }

  /** Stops timers and listeners. Work in progress finishes inside the engine, but nothing more is sent or stored. */
  stop(): void {
    this.stopped = true;
    for (const u of this.unsubscribe.splice(0)) u();
    this.sender.stop();
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
      await this.quiesce();
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

  /**
   * A remote unit joined the relation (the agent saw it in the mesh): runs
   * `joined`. The returned promise settles once that run committed; the
   * next submission need not wait for it (call this for every unit of a
   * burst, then await them together: they are applied in one run).
   */
  async unitJoined(relationId: string, unit: string): Promise<RunReport | undefined> {
    this.assertRunning();
    if (unit === this.unit) {
      throw new RelationError('REL_ERR_OPTIONS', `unit ${unit} cannot join its own relation ${relationId} as a remote unit; announce only the other units (for peers: the other units of the service)`);
    }
    // Wrapped in an object so that the serial chain, which awaits it, does not wait for the commit.
    const { committed } = await this.serial(async () => ({ committed: this.queueJoined(relationId, unit, true) }));
    const report = await committed;
    if (this.stopped) return report;
    const ref = this.findRelation(relationId);
    if (ref?.relation.units[unit]) {
      // Now that the unit is joined here: offer our bag, ask for its, resend what it has not acked, apply what it sent.
      this.sender.sendSync(ref, unit);
      this.receiver.sendPull(ref, unit);
      this.sender.retransmitNow(linkId(relationId, unit));
      this.receiver.drain(linkId(relationId, unit));
    }
    return report;
  }

  /** A remote unit left or was declared failed by the mesh: runs `departed`, whose handlers can read its last bag (`departing()`). */
  unitDeparted(relationId: string, unit: string): Promise<RunReport | undefined> {
    this.assertRunning();
    return this.serial(async () => {
      await this.quiesce();
      const ref = this.requireRelation(relationId);
      if (!ref.relation.units[unit]) return undefined;
      this.sender.pause(linkId(relationId, unit));
      // The event carries the unit's last bag, from the committed view the apply step removes (departing.ts).
      return this.engine.submit(departedEvent(ref.state, ref.endpoint, relationId, unit), {
        apply: (tx) => void stageUnitDeparted(tx, ref.endpoint, relationId, unit),
      });
    });
  }

  /**
   * A departed remote unit is gone for good (the operator removed it): forget
   * its link (outbox, inbox, receive position) and its departed entry, so
   * neither grows with every unit a deployment ever had. Runs no handler
   * beyond those that read the departed list. A unit still joined is left
   * alone (it departs first); returns whether anything was forgotten.
   */
  forgetUnit(relationId: string, unit: string): Promise<boolean> {
    this.assertRunning();
    return this.serial(async () => {
      await this.quiesce();
      const ref = this.findRelation(relationId);
      if (!ref || ref.relation.units[unit]) return false;
      const id = linkId(relationId, unit);
      const hadLink = this.store.get(id) !== undefined || this.sender.hasRecord(relationId, unit);
      const pos = linkPosition(this.engine.knowledge.relations[LINKS_KEY], id);
      const known = ref.relation.departed.includes(unit) || pos.epoch !== 0 || pos.applied !== 0 || this.sender.hasRecord(relationId, unit);
      if (known) {
        await this.engine.submit(internalEvent(UNIT_REAPED_EVENT, { relationId, unit }), {
          apply: (tx) => {
            stageUnitReaped(tx, ref.endpoint, relationId, unit);
            stageSendRecordDropped(tx, relationId, unit);
          },
        });
      }
      if (this.stopped) return known || hadLink;
      this.sender.forget(id);
      this.receiver.forget(id);
      this.store.delete(id);
      this.versions.forget(unit);
      return known || hadLink;
    });
  }

  /** The relation was removed: runs `broken` and forgets its links. */
  removeRelation(relationId: string): Promise<RunReport | undefined> {
    this.assertRunning();
    return this.serial(async () => {
      await this.quiesce();
      const ref = this.findRelation(relationId);
      if (!ref) return undefined;
      const report = await this.engine.submit(
        { kind: 'relation', endpoint: ref.endpoint, name: 'broken', payload: { relationId, remoteService: ref.relation.remoteService } },
        { apply: (tx) => void stageRelationBroken(tx, ref.endpoint, relationId) },
      );
      if (this.stopped) return report;
      this.sender.forgetRelation(relationId);
      for (const id of this.store.keys()) if (id.startsWith(`${relationId}|`)) this.store.delete(id);
      return report;
    });
  }

  /** The mesh's view of a unit: unreachable pauses retransmission to it; reachable again resends and re-syncs at once. */
  setReachable(unit: string, reachable: boolean): void {
    if (this.stopped) return;
    if (!reachable) {
      this.unreachable.add(unit);
      this.sender.pauseUnit(unit);
      return;
    }
    if (!this.unreachable.delete(unit)) return;
    forEachJoined(this.engine.knowledge, (ref, u, relationId) => {
      if (u !== unit) return;
      this.sender.resume(linkId(relationId, u));
      this.sender.sendSync(ref, u);
      this.receiver.sendPull(ref, u);
    });
  }

  /** Per-link counters, for status and tests. */
  linkStatus(): LinkStatus[] {
    const kb = this.engine.knowledge;
    const links = kb.relations[LINKS_KEY];
    const received = links !== null && typeof links === 'object' && !Array.isArray(links) ? Object.keys(links) : [];
    const ids = [...new Set([...this.sender.linkIds(), ...received, ...this.receiver.bufferedLinks()])].sort();
    return ids.map((id) => {
      const relationId = id.slice(0, id.indexOf('|'));
      const remoteUnit = id.slice(id.indexOf('|') + 1);
      const relation = findRelation(kb, relationId)?.relation;
      const departed = relation !== undefined && !relation.units[remoteUnit] && relation.departed.includes(remoteUnit);
      return { linkId: id, relationId, remoteUnit, nextSeq: this.sender.nextSeq(relationId, remoteUnit), unacked: this.sender.unacked(relationId, remoteUnit), buffered: this.receiver.buffered(id), applied: linkPosition(links, id).applied, departed };
    });
  }


  /** The endpoint spec of this charm, for callers that want to check before relating. */
  endpoint(name: string) {
    return endpointOf(this.metadata, name);
  }

  // ---- incoming messages -------------------------------------------------

  /** Checks a message at the boundary and hands it to the half of the link it is for. */
  private receive(from: string, raw: unknown): void {
    if (this.stopped) return;
    let m: LinkMessage;
    try {
      m = parseLinkMessage(raw, this.versions.protocol);
    } catch (error) {
      // A well-formed message in a version we do not read still says which versions its sender reads.
      if (error instanceof RelationError && error.code === 'REL_ERR_PROTOCOL_VERSION') this.versions.learn(from, raw);
      this.onError(error);
      return;
    }
    // Ignore messages not meant for us, or claiming another sender.
    if (m.to !== this.unit || m.from !== from || from === this.unit) {
      this.onError(new RelationError('REL_ERR_BAD_MESSAGE', `message from ${from} claims to be from ${m.from} to ${m.to}; this is ${this.unit}`));
      return;
    }
    // A message from a unit proves it is there: a "reachable" notice may have been lost (the mesh emits none
    // when a suspicion is refuted), and a unit kept unreachable would get no acks, pulls or data again.
    if (this.unreachable.has(from)) this.setReachable(from, true);
    this.versions.learn(from, m);
    try {
      switch (m.type) {
        case 'data':
          return this.receiver.receiveData(m);
        case 'ack':
          return this.sender.receiveAck(m);
        case 'sync':
          return this.receiver.receiveSync(m);
        case 'pull':
          return this.sender.receivePull(m);
      }
    } catch (error) {
      this.onError(error);
    }
  }

  /** Puts a message on the wire in the highest link protocol version both sides read (none: nothing is sent). */
  private sendStamped(unit: string, message: OutgoingLinkMessage): void {
    const stamped = this.versions.stamp(unit, message);
    if (stamped) this.transport.send(unit, stamped);
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

  /**
   * Queues `joined` for a remote unit in the engine, inside the serial chain,
   * and returns its commit; the one already queued if there is one;
   * undefined when there is nothing to join (joined already; or, from data,
   * the unit departed: its messages wait until the mesh says it is back).
   */
  private queueJoined(relationId: string, unit: string, explicit: boolean): Promise<RunReport | undefined> | undefined {
    const id = linkId(relationId, unit);
    const pending = this.pendingJoins.get(id);
    if (pending) return pending;
    const ref = this.requireRelation(relationId);
    if (ref.relation.units[unit]) return explicit ? Promise.resolve(undefined) : undefined;
    if (!explicit && ref.relation.departed.includes(unit)) return undefined;
    const schemas = remoteSchemas(this.interfaces.get(ref.state.interface), ref.state.role);
    const committed = this.engine.submit(
      { kind: 'relation', endpoint: ref.endpoint, name: 'joined', unit, payload: { relationId, remoteService: ref.relation.remoteService } },
      { apply: (tx) => void stageUnitJoined(tx, ref.endpoint, relationId, unit, schemas) },
    );
    this.pendingJoins.set(id, committed);
    const clear = (): void => {
      if (this.pendingJoins.get(id) === committed) this.pendingJoins.delete(id);
    };
    committed.then(clear, clear);
    this.track(committed);
    return committed;
  }

  /** Keeps a queued submission until it settles, for quiesce(). */
  private track(submitted: Promise<unknown>): void {
    this.queued.add(submitted);
    const done = (): void => void this.queued.delete(submitted);
    submitted.then(done, done);
  }

  /**
   * Waits until every join and data run queued so far has run (committed or
   * failed for good): for submissions built from a unit's state (its last
   * bag for `departed`, whether it is joined), which must see them.
   */
  private async quiesce(): Promise<void> {
    while (this.queued.size > 0 && !this.stopped) await Promise.allSettled([...this.queued]);
  }

  // ---- lookups -----------------------------------------------------------

  private findRelation(relationId: string): RelationRef | undefined {
    return findRelation(this.engine.knowledge, relationId);
  }

  private requireRelation(relationId: string): RelationRef {
    const ref = this.findRelation(relationId);
    if (!ref) throw new RelationError('REL_ERR_UNKNOWN_RELATION', `unit ${this.unit} has no relation "${relationId}"; add it with addRelation() first`);
    return ref;
  }
}
