/**
 * The relation manager's options, their defaults and checks, and the shapes
 * it takes and reports (a relation to add, per-link counters). manager.ts
 * re-exports them.
 */
import type { Clock } from '@rhizome/clock';
import type { Engine } from '@rhizome/engine';
import { RelationError } from './errors';
import type { InterfaceRegistry } from './interface';
import { DEFAULT_RETRANSMIT_OPTIONS, type RetransmitOptions } from './internal/retransmit-timers';
import type { AppliedInfo } from './internal/link-receiver';
import type { PlausibilityBounds } from './internal/link-protocol';
import type { LinkStore } from './link-store';
import { LINK_PROTOCOL, type LinkVersionRange } from './messages';
import type { CharmMetadata } from './metadata';
import type { LinkTransport } from './transport';

export interface RelationManagerOptions {
  /** This unit, e.g. `hdfs-datanode/0`; the service is the part before "/". */
  readonly unit: string;
  readonly metadata: CharmMetadata;
  readonly interfaces: InterfaceRegistry;
  /** The unit's engine, built with `relationModel: relationsModel`. */
  readonly engine: Engine;
  readonly transport: LinkTransport;
  /**
   * Link records an older version kept outside the knowledge base (the
   * agent's durable file): read on start, moved into the knowledge base and
   * deleted (link-store.ts). Nothing new is written there.
   */
  readonly store?: LinkStore;
  /** Time for retransmits and sync rounds (default: systemClock; the agent passes the engine's). */
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
   * Stamps a new endpoint state's incarnation and a new send record's
   * epoch (state.ts); must exceed every stamp this unit used
   * before, even across a loss of its stores. Default: wall-clock milliseconds.
   */
  readonly incarnation?: () => number;
  /**
   * The wall clock (ms) that incoming stamps (link epochs, incarnations) are
   * checked against: one more than `plausibility.maxStampAheadMs` ahead is
   * refused. Default: `Date.now`.
   */
  readonly now?: () => number;
  /** Bounds on how far ahead incoming stamps and counters may jump (DEFAULT_PLAUSIBILITY). */
  readonly plausibility?: Partial<Omit<PlausibilityBounds, 'now'>>;
  /**
   * The link protocol versions this unit reads and writes (default
   * LINK_PROTOCOL); other values only to test a rolling upgrade.
   */
  readonly linkProtocol?: LinkVersionRange;
  /** Called after a link message was applied and committed. */
  readonly onApplied?: (info: AppliedInfo) => void;
  /** Called for messages refused at the boundary and for unexpected internal errors. */
  readonly onError?: (error: unknown) => void;
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
  /**
   * The remote unit departed this relation (and has not joined again). What
   * the link holds for it waits for a rejoin: it does not count against
   * convergence, and `forgetUnit` drops it once the unit is gone for good.
   */
  readonly departed: boolean;
}

export const DEFAULT_RELATION_MANAGER_OPTIONS = Object.freeze({
  // Enough for a burst of publishes across a partition; beyond, the sender's retransmits fill the gap later.
  maxInbox: 256,
  // Same bound on the sending side; only superseded bags are ever dropped.
  maxOutbox: 256,
});

/** The options every manager needs checked and defaulted before it wires its links. */
export interface ResolvedManagerOptions {
  readonly retransmit: RetransmitOptions;
  readonly maxInbox: number;
  readonly maxOutbox: number;
  readonly protocol: LinkVersionRange;
}

/** Checks the options (REL_ERR_OPTIONS, naming the bad one) and fills in the defaults. */
export function resolveManagerOptions(options: RelationManagerOptions): ResolvedManagerOptions {
  if (typeof options.unit !== 'string' || !/^[a-z][a-z0-9-]*\/\d+$/.test(options.unit)) {
    throw new RelationError('REL_ERR_OPTIONS', `unit must look like "service/0", got ${JSON.stringify(options.unit)}`);
  }
  const r = { ...DEFAULT_RETRANSMIT_OPTIONS, ...options.retransmit };
  if (!(r.baseMs > 0 && r.maxMs >= r.baseMs && Number.isInteger(r.window) && r.window >= 1 && r.syncIntervalMs > 0)) {
    throw new RelationError('REL_ERR_OPTIONS', `retransmit needs 0 < baseMs <= maxMs, window >= 1 and syncIntervalMs > 0, got ${JSON.stringify(r)}`);
  }
  const maxInbox = options.maxInbox ?? DEFAULT_RELATION_MANAGER_OPTIONS.maxInbox;
  const maxOutbox = options.maxOutbox ?? DEFAULT_RELATION_MANAGER_OPTIONS.maxOutbox;
  for (const [name, v] of [['maxInbox', maxInbox], ['maxOutbox', maxOutbox]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RelationError('REL_ERR_OPTIONS', `${name} must be a positive integer, got ${String(v)}`);
  }
  const protocol = options.linkProtocol ?? LINK_PROTOCOL;
  if (!(Number.isInteger(protocol.min) && Number.isInteger(protocol.max) && protocol.min >= 1 && protocol.min <= protocol.max)) {
    throw new RelationError('REL_ERR_OPTIONS', `linkProtocol must be { min, max } with 1 <= min <= max, got ${JSON.stringify(protocol)}`);
  }
  return { retransmit: Object.freeze(r), maxInbox, maxOutbox, protocol };
}
