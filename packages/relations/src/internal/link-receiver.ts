/**
 * The receiving half of a unit's links: buffering, in-order delivery,
 * dedupe, applying a message as an engine run, acks, pulls. The decisions
 * (admit a message, which buffered one is next, whether a sync calls for a
 * pull) are pure functions in link-protocol.ts; this class executes them
 * against the link store, the engine and the transport.
 *
 * Data messages are buffered per link, in memory, and applied strictly in
 * sequence order, one engine run each. The buffer is not persisted: a
 * message is acked only once the run that applied it is durable, and the
 * sender retransmits until then, so a crash loses nothing a restart needs
 * (and each applied message costs one durable record, the run's commit). The run's apply step
 * writes the new view of the remote bag AND the link's last applied
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
 */
import { EngineError, internalEvent, type EngineEvent, type Transaction } from '@rhizome/engine';
import { covered, linkPosition, previewRemoteBag, remoteSchemas, stageLinkApplied, stageRemoteBag, stateAfterJoin, type RemoteBagUpdate } from './apply';
import { RelationError } from '../errors';
import type { InterfaceRegistry } from '../interface';
import type { LinkContext } from './link-context';
import { admit, implausible, nextInOrder, shouldPull, type PlausibilityBounds } from './link-protocol';
import { emptyLinkRecord } from '../link-store';
import type { AckMessage, DataMessage, PullMessage, SyncMessage, Unstamped } from '../messages';
import { findRelation, type RelationRef } from './relation-lookup';
import { compareVersions, LINKS_KEY, linkId, type LinkReceiveState } from '../state';

/** Internal event of a run that only records a link message as applied (its bag was not newer). No charm should need it. */
export const LINK_SYNC_EVENT = 'relation.link-sync';

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

export interface LinkReceiverOptions {
  readonly interfaces: InterfaceRegistry;
  /** Messages buffered per link before further ones are dropped (RelationManagerOptions.maxInbox). */
  readonly maxInbox: number;
  readonly onApplied: ((info: AppliedInfo) => void) | undefined;
  /** Runs `op` after every submission made before it (the manager's one serial chain). */
  readonly serial: <T>(op: () => Promise<T>) => Promise<T>;
  /**
   * Queues `joined` for a unit whose data arrived before the mesh announced
   * it (it evidently joined), unless it departed; true when the unit's
   * `joined` is queued (now or before), so its data may be queued behind it.
   * Called inside the serial chain.
   */
  readonly joinFromData: (relationId: string, unit: string) => boolean;
  /** Whether a `joined` of the unit is queued in the engine and has not run yet. */
  readonly joinPending: (relationId: string, unit: string) => boolean;
  /** Hands a queued data run to the manager, which waits for it before building events from a unit's state. */
  readonly track: (submitted: Promise<unknown>) => void;
  /** The wall clock stamps are checked against (RelationManagerOptions.now). */
  readonly now: () => number;
  readonly plausibility: Omit<PlausibilityBounds, 'now'>;
}

export class LinkReceiver {
  /** Per link: messages received and not applied yet (ahead of a gap, or waiting for their run), ascending. */
  private readonly inboxes = new Map<string, DataMessage[]>();
  private readonly draining = new Set<string>();
  private readonly drainAgain = new Set<string>();

  constructor(
    private readonly ctx: LinkContext,
    private readonly options: LinkReceiverOptions,
  ) {}

  receiveData(m: DataMessage): void {
    // Unknown relation (not created here yet, or removed): no ack, the sender retries.
    if (!findRelation(this.ctx.engine.knowledge, m.rel)) return;
    const id = linkId(m.rel, m.from);
    const ref = findRelation(this.ctx.engine.knowledge, m.rel);
    const why = implausible(m, this.receivePosition(id), ref?.relation.units[m.from], ref?.state.app?.version ?? 0, { now: this.options.now(), ...this.options.plausibility });
    if (why !== undefined) {
      // No ack: a genuine sender retransmits, and its later messages are judged afresh.
      this.ctx.onError(new RelationError('REL_ERR_IMPLAUSIBLE', `data message ${m.epoch}/${m.seq} from ${m.from} on ${m.rel} refused: ${why}`));
      return;
    }
    const admission = admit({ ...emptyLinkRecord(m.rel, m.from), inbox: this.inbox(id) }, this.receivePosition(id), m, this.options.maxInbox);
    switch (admission.kind) {
      case 'duplicate': {
        if (admission.ack !== undefined) this.sendAck(m.rel, m.from, m.epoch, admission.ack);
        // Applied before, yet newer than the view: the view was dropped since (the unit departed and joined
        // again). Re-sync by state: the pull's answer is the current bag under a new sequence number.
        const view = ref?.relation.units[m.from];
        if (ref && view && compareVersions(m.inc, m.version, view.incarnation, view.version) > 0) this.sendPull(ref, m.from);
        return;
      }
      case 'full':
        return;
      case 'buffered':
        if (admission.record) this.setInbox(id, admission.record.inbox);
        this.drain(id);
        return;
    }
  }

  receiveSync(m: SyncMessage): void {
    const ref = findRelation(this.ctx.engine.knowledge, m.rel);
    const view = ref?.relation.units[m.from];
    if (!ref || !view) return;
    const id = linkId(m.rel, m.from);
    if (shouldPull(view, ref.state.app?.version ?? 0, this.receivePosition(id), this.inbox(id), m)) this.sendPull(ref, m.from);
  }

  sendPull(ref: RelationRef, unit: string): void {
    if (!this.ctx.canSend(unit)) return;
    const relationId = ref.relationId;
    const view = ref.relation.units[unit];
    const pos = this.receivePosition(linkId(relationId, unit));
    const msg: Unstamped<PullMessage> = {
      type: 'pull',
      rel: relationId,
      from: this.ctx.unit,
      to: unit,
      epoch: pos.epoch,
      expect: pos.applied + 1,
      viewInc: view?.incarnation ?? 0,
      version: view?.version ?? 0,
    };
    this.ctx.send(unit, msg);
  }

  /** Applies a link's buffered messages, in order, one serial run each, until none is next (empty, or a gap). */
  drain(id: string): void {
    if (this.ctx.isStopped()) return;
    if (this.draining.has(id)) {
      this.drainAgain.add(id);
      return;
    }
    this.draining.add(id);
    // The serial chain is held only until the run is queued in the engine, not
    // until it commits: the engine's FIFO keeps the order, and messages of
    // other links queue behind it, so a burst is applied in one run (the
    // engine batches relation events waiting in its inbox). This link's next
    // message still waits for this one's commit (drain runs again after it).
    this.options
      .serial(() => this.applyNext(id))
      .then((queued) => queued.done)
      .then(
      (progressed) => {
        this.draining.delete(id);
        if (this.drainAgain.delete(id) || progressed) this.drain(id);
      },
      (error: unknown) => {
        this.draining.delete(id);
        this.drainAgain.delete(id);
        if (!isStopError(error)) this.ctx.onError(error);
      },
    );
  }

  /** Drops a link's buffered messages and drain bookkeeping, for a link being forgotten. */
  forget(id: string): void {
    this.inboxes.delete(id);
    this.drainAgain.delete(id);
  }

  /** Messages buffered on a link. */
  buffered(id: string): number {
    return this.inboxes.get(id)?.length ?? 0;
  }

  /** Links with buffered messages. */
  bufferedLinks(): string[] {
    return [...this.inboxes.keys()];
  }

  /** Takes over messages a link record holds from an older version (which persisted the inbox), and drains them. */
  adopt(id: string, messages: readonly DataMessage[]): void {
    if (messages.length === 0) return;
    const merged = [...this.inbox(id), ...messages].sort((a, b) => a.epoch - b.epoch || a.seq - b.seq);
    this.setInbox(id, merged.filter((x, i) => i === 0 || x.epoch !== merged[i - 1]!.epoch || x.seq !== merged[i - 1]!.seq).slice(0, this.options.maxInbox));
    this.drain(id);
  }

  private inbox(id: string): DataMessage[] {
    return this.inboxes.get(id) ?? [];
  }

  private setInbox(id: string, inbox: readonly DataMessage[]): void {
    if (inbox.length === 0) this.inboxes.delete(id);
    else this.inboxes.set(id, [...inbox]);
  }

  private sendAck(relationId: string, to: string, epoch: number, seq: number): void {
    if (!this.ctx.canSend(to) || seq < 1) return;
    const msg: Unstamped<AckMessage> = { type: 'ack', rel: relationId, from: this.ctx.unit, to, epoch, seq };
    this.ctx.send(to, msg);
  }

  private receivePosition(id: string): LinkReceiveState {
    return linkPosition(this.ctx.engine.knowledge.relations[LINKS_KEY], id);
  }

  /**
   * Queues the next in-order buffered message of a link as one run; `done`
   * settles once it committed and was acked (false when there was none:
   * empty, or a gap). Wrapped in an object so that the serial chain, which
   * awaits this, does not wait for the commit.
   */
  private async applyNext(id: string): Promise<{ done: Promise<boolean> }> {
    const none = { done: Promise.resolve(false) };
    const { engine } = this.ctx;
    const held = this.inbox(id);
    if (held.length === 0) return none;
    const { inbox, next: m } = nextInOrder(held, this.receivePosition(id));
    if (inbox.length !== held.length) this.setInbox(id, inbox);
    if (!m) return none;
    const ref = findRelation(engine.knowledge, m.rel);
    if (!ref) return none;
    const schemas = remoteSchemas(this.options.interfaces.get(ref.state.interface), ref.state.role);
    let state = ref.state;
    if (!ref.relation.units[m.from]) {
      // Data from a unit whose `joined` is queued, or that the mesh has not
      // announced yet (it evidently joined: queue its `joined` now). Queued
      // right behind that `joined`, the data is applied in the same run: the
      // unit's joined handlers and its first changed handlers see one state.
      // From a unit that departed: hold it (unacked) until it joins again.
      if (!this.options.joinPending(m.rel, m.from) && !this.options.joinFromData(m.rel, m.from)) return none;
      state = stateAfterJoin(ref.state, m.rel, m.from, schemas);
    }
    const update: RemoteBagUpdate = {
      endpoint: ref.endpoint,
      relationId: m.rel,
      unit: m.from,
      bag: m.bag,
      incarnation: m.inc,
      version: m.version,
      ...(m.app ? { app: m.app } : {}),
      ...(m.ifaceVersion !== undefined ? { ifaceVersion: m.ifaceVersion } : {}),
    };
    // An incompatible sender's message is applied (as an incompatible view) and acked like any other: no retransmit storm.
    const keys = previewRemoteBag(state, update, schemas.iface);
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
    // Queued now, inside the serial chain (order); awaited outside it.
    // A backlog (the next message of this link is already here) runs without waiting for a burst to gather:
    // the next one is queued only after this one commits, so the wait would gather nothing.
    const backlog = inbox.some((x) => x.epoch === m.epoch && x.seq === m.seq + 1);
    const submitted = engine.submit(event, { apply, gather: !backlog });
    submitted.catch(() => undefined);
    this.options.track(submitted);
    return { done: this.afterSubmit(id, m, keys, submitted) };
  }

  private async afterSubmit(id: string, m: DataMessage, keys: readonly string[], submitted: Promise<unknown>): Promise<boolean> {
    const { engine } = this.ctx;
    let skipped = false;
    try {
      await submitted;
    } catch (error) {
      if (!(error instanceof EngineError && error.code === 'ENGINE_ERR_SKIPPED')) throw error;
      // The operator skipped the run: consume the message without its effect (a later message carries a newer bag anyway).
      skipped = true;
      await engine.submit(internalEvent(LINK_SYNC_EVENT, { relationId: m.rel, unit: m.from, seq: m.seq, skipped: true }), {
        apply: (tx) => stageLinkApplied(tx, id, m.epoch, m.seq),
      });
    }
    if (this.ctx.isStopped()) return false;
    const done: LinkReceiveState = { epoch: m.epoch, applied: m.seq };
    this.setInbox(id, this.inbox(id).filter((x) => !covered(done, x.epoch, x.seq)));
    this.sendAck(m.rel, m.from, m.epoch, m.seq);
    try {
      this.options.onApplied?.({ relationId: m.rel, from: m.from, seq: m.seq, version: m.version, keys: skipped ? [] : keys, skipped });
    } catch (error) {
      this.ctx.onError(error);
    }
    return true;
  }
}

/** A submission that failed only because the manager or the engine stopped: nothing to report. */
function isStopError(error: unknown): boolean {
  return (error instanceof RelationError && error.code === 'REL_ERR_STOPPED') || (error instanceof EngineError && error.code === 'ENGINE_ERR_STOPPED');
}
