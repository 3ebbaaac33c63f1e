/**
 * Link state that is not part of the knowledge base: per link (relation,
 * remote unit), the sender's next sequence number and unacknowledged
 * outbox, and the receiver's buffered inbox (messages that arrived ahead
 * of a gap). The agent backs this with durable storage; `MemoryLinkStore`
 * serves tests, and survives a simulated restart when the test keeps it.
 *
 * Contract: `put` is durable when it returns (the manager transmits a
 * message only after the record holding it was put). Records are copied
 * in and out, so nothing the manager mutates later can leak into storage.
 *
 * What happens if this store is lost anyway (an agent reinstalled with its
 * knowledge base but not its link store): the receive side is in the
 * knowledge base and survives; the sender notices acks beyond what it sent
 * and renumbers, and the sync/pull exchange re-sends the current bag. So
 * the views still converge; only messages superseded by a newer bag are
 * never applied.
 */
import type { DataMessage } from './messages';

export interface LinkRecord {
  readonly relationId: string;
  readonly remoteUnit: string;
  /** Next sequence number to assign to a data message (starts at 1). */
  readonly nextSeq: number;
  /** Local bag version last turned into a message (0 = none). */
  readonly queuedVersion: number;
  /** App bag version last turned into a message (peers, leader only). */
  readonly queuedAppVersion: number;
  /** Sent but not acknowledged, ascending seq. */
  readonly outbox: readonly DataMessage[];
  /** Received but not applied yet (ahead of a gap, or waiting for a run), ascending seq. */
  readonly inbox: readonly DataMessage[];
}

export interface LinkStore {
  get(linkId: string): LinkRecord | undefined;
  put(linkId: string, record: LinkRecord): void;
  delete(linkId: string): void;
  /** Every stored link id. */
  keys(): string[];
}

export function emptyLinkRecord(relationId: string, remoteUnit: string): LinkRecord {
  return { relationId, remoteUnit, nextSeq: 1, queuedVersion: 0, queuedAppVersion: 0, outbox: [], inbox: [] };
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
}
