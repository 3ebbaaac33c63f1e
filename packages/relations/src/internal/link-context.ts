/**
 * What the two halves of a unit's links, the sender (link-sender.ts) and the
 * receiver (link-receiver.ts), get from the relation manager that wires them
 * (manager.ts). The sender keeps its outbox in the link store
 * (link-store.ts); the receiver buffers in memory.
 */
import type { Engine } from '@rhizome/engine';
import type { LinkStore } from '../link-store';
import type { OutgoingLinkMessage } from '../messages';
import type { LinkTransport } from '../transport';

export interface LinkContext {
  /** This unit, e.g. `hdfs-datanode/0`. */
  readonly unit: string;
  readonly engine: Engine;
  readonly store: LinkStore;
  readonly transport: LinkTransport;
  /**
   * Sends once every link-store change made so far is durable (store.flush),
   * in call order: what a message says (a sequence number, an epoch) can
   * never be forgotten by a crash after it left. Acks need not wait: they
   * follow a commit the engine already made durable (sendNow). Both stamp
   * the link protocol version the peer reads (messages.ts).
   */
  send(unit: string, message: OutgoingLinkMessage): void;
  /** Sends at once, without waiting for the store (acks). */
  sendNow(unit: string, message: OutgoingLinkMessage): void;
  /** True once the manager was stopped: from then on nothing is sent, stored or scheduled. */
  isStopped(): boolean;
  /** Whether messages to `unit` go on the wire now: not stopped, and the mesh has not reported the unit unreachable. */
  canSend(unit: string): boolean;
  /** Reports messages refused at the boundary and unexpected internal errors. */
  onError(error: unknown): void;
}
