/**
 * The sending side of a link as the knowledge base keeps it:
 * `kb.relations['@out/<relation>']` maps each remote unit of the relation to
 * its SendRecord (state.ts describes the rest of relation state). Written
 * only inside runs, by internal/link-sender.ts, so each record is committed
 * with the run whose message it numbers.
 */
import type { Json } from '@rhizome/engine';
import type { DataMessage, Unstamped } from './messages';

/** The kb.relations key of relation `relationId`'s send records (per remote unit). Not an endpoint name. */
export const OUTBOX_PREFIX = '@out/';

export function outboxKey(relationId: string): string {
  return `${OUTBOX_PREFIX}${relationId}`;
}

/**
 * The sending side of one link (relation, remote unit), kept in the
 * knowledge base and committed by the run that queued its newest message.
 */
export interface SendRecord {
  readonly relationId: string;
  readonly remoteUnit: string;
  /**
   * When this record's numbering began (a stamp from the manager's
   * `incarnation` clock). Sequence numbers count within an epoch; a record
   * created afresh (the knowledge base was lost, see `bagInc`) starts a new,
   * later epoch, which receivers follow.
   */
  readonly epoch: number;
  /** The local endpoint incarnation whose bag versions `queuedVersion` refers to. */
  readonly bagInc: number;
  /** Next sequence number to assign to a data message (starts at 1). */
  readonly nextSeq: number;
  /** Local bag version last turned into a message (0 = none). */
  readonly queuedVersion: number;
  /** App bag version last turned into a message (peers, leader only). */
  readonly queuedAppVersion: number;
  /**
   * Interface version of the last data message queued; a different one (the
   * charm was upgraded) queues the current bag again so the receiver re-checks
   * compatibility. Absent in records written before versions were sent.
   */
  readonly queuedIfaceVersion?: string;
  /**
   * Queued and not known to be acknowledged when the record was last
   * written, ascending seq. Acks are kept in memory and trimmed from here
   * when the next message is queued (link-sender.ts).
   */
  readonly outbox: readonly Unstamped<DataMessage>[];
}

export type SendRecords = Readonly<Record<string, SendRecord>>;

/** The send records of a relation (by remote unit) from its `@out/` state; empty if none. */
export function asSendRecords(state: Json | undefined): SendRecords {
  return state !== null && typeof state === 'object' && !Array.isArray(state) ? (state as unknown as SendRecords) : {};
}
