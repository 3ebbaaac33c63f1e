/**
 * Link state that is not part of the knowledge base: per link (relation,
 * remote unit), the sender's epoch, next sequence number and
 * unacknowledged outbox. (The receiver's buffer is not persisted: see
 * link-receiver.ts.) The agent backs this with durable storage; `MemoryLinkStore`
 * serves tests, and survives a simulated restart when the test keeps it.
 *
 * Contract: `put` and `delete` take effect at once for `get` and `keys`;
 * `flush()` resolves once every change made before it is durable, and the
 * manager transmits a message only after the flush that follows the put of
 * the record holding it (link-sender.ts). Flushes resolve in call order.
 * Records are copied in and out, so nothing the manager mutates later can
 * leak into storage.
 *
 * What happens if this store is lost anyway: new records get a new epoch,
 * so receivers tell the new numbering from the old and follow it, and the
 * sync/pull exchange re-sends the current bag. If the knowledge base is
 * lost too, the unit's endpoints get a new incarnation, which orders its new
 * bags after the old ones. Either way the views converge; only messages
 * superseded by a newer bag may never be applied.
 */
import type { DataMessage, Unstamped } from './messages';

export interface LinkRecord {
  readonly relationId: string;
  readonly remoteUnit: string;
  /**
   * When this record's numbering began (a stamp from the manager's
   * `incarnation` clock). Sequence numbers count within an epoch; a record
   * created afresh (the store was lost, or the knowledge base was, see
   * `bagInc`) starts a new, later epoch, which receivers follow.
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
  /** Sent but not acknowledged, ascending seq. */
  readonly outbox: readonly Unstamped<DataMessage>[];
  /**
   * Received but not applied yet. Always empty in records written now: the
   * receiver buffers in memory (link-receiver.ts); records of older versions
   * may hold messages, which the manager hands to the receiver on start.
   */
  readonly inbox: readonly DataMessage[];
}

export interface LinkStore {
  get(linkId: string): LinkRecord | undefined;
  put(linkId: string, record: LinkRecord): void;
  delete(linkId: string): void;
  /** Every stored link id. */
  keys(): string[];
  /** Resolves once every put and delete made before the call is durable (in call order); rejects if they cannot be. */
  flush(): Promise<void>;
}

export function emptyLinkRecord(relationId: string, remoteUnit: string, epoch = 0, bagInc = 0): LinkRecord {
  return { relationId, remoteUnit, epoch, bagInc, nextSeq: 1, queuedVersion: 0, queuedAppVersion: 0, outbox: [], inbox: [] };
}

export class MemoryLinkStore implements LinkStore {
  private readonly records = new Map<string, LinkRecord>();
  /** Number of puts, for tests and benchmarks. */
  writes = 0;

  get(linkId: string): LinkRecord | undefined {
    const r = this.records.get(linkId);
    return r === undefined ? undefined : structuredClone(r);
  }

  put(linkId: string, record: LinkRecord): void {
    this.writes += 1;
    this.records.set(linkId, structuredClone(record));
  }

  delete(linkId: string): void {
    this.records.delete(linkId);
  }

  keys(): string[] {
    return [...this.records.keys()].sort();
  }

  /** Memory is as durable as it gets here: a test that keeps the store across a restart keeps everything. */
  flush(): Promise<void> {
    return Promise.resolve();
  }
}
