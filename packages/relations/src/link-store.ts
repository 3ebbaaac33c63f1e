/**
 * Link records kept outside the knowledge base, by agents of earlier
 * versions: per link (relation, remote unit), the sender's numbering and
 * outbox, and (older still) a receive inbox. Links keep nothing here now:
 * the sending side lives in the knowledge base (`@out/<relation>`, state.ts)
 * and is committed with the run that queued the message, and the receiver
 * buffers in memory (link-receiver.ts). The manager reads this store once
 * on start: it adopts an old inbox, moves an old record's numbering and
 * outbox into the knowledge base in one run, and then deletes the record
 * (manager.ts). The agent backs it with its durable file; `MemoryLinkStore`
 * serves tests.
 *
 * Contract: `put` and `delete` take effect at once for `get` and `keys`.
 * Records are copied in and out, so nothing the manager mutates later can
 * leak into storage.
 */
import type { DataMessage } from './messages';
import type { SendRecord } from './send-record';

export type { SendRecord } from './send-record';

export interface LinkRecord extends SendRecord {
  /** Received but not applied yet (records of older versions only: the receiver buffers in memory now). */
  readonly inbox: readonly DataMessage[];
}

export interface LinkStore {
  get(linkId: string): LinkRecord | undefined;
  put(linkId: string, record: LinkRecord): void;
  delete(linkId: string): void;
  /** Every stored link id. */
  keys(): string[];
}

export function emptyLinkRecord(relationId: string, remoteUnit: string, epoch = 0, bagInc = 0): LinkRecord {
  return { relationId, remoteUnit, epoch, bagInc, nextSeq: 1, queuedVersion: 0, queuedAppVersion: 0, outbox: [], inbox: [] };
}

export class MemoryLinkStore implements LinkStore {
  private readonly records = new Map<string, LinkRecord>();
  /** Number of puts and deletes, for tests and benchmarks. */
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
    if (this.records.delete(linkId)) this.writes += 1;
  }

  keys(): string[] {
    return [...this.records.keys()].sort();
  }
}
