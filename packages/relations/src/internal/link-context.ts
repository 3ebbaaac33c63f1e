/**
 * What the two halves of a unit's links, the sender (link-sender.ts) and the
 * receiver (link-receiver.ts), get from the relation manager that wires them
 * (manager.ts). The sender keeps its send records in the knowledge base
 * (`@out/<relation>`, state.ts); the receiver buffers in memory.
 */
import type { Engine } from '@rhizome/engine';
import type { OutgoingLinkMessage } from '../messages';
import type { LinkTransport } from '../transport';

export interface LinkContext {
  /** This unit, e.g. `hdfs-datanode/0`. */
  readonly unit: string;
  readonly engine: Engine;
  readonly transport: LinkTransport;
  /**
   * Puts a message on the wire, stamped with the link protocol version the
   * peer reads (messages.ts). Callers send only what a durable commit holds:
   * data messages and their numbers from `engine.knowledge` or an
   * afterCommit (link-sender.ts), acks after the run that applied the
   * message (link-receiver.ts).
   */
  send(unit: string, message: OutgoingLinkMessage): void;
  /** True once the manager was stopped: from then on nothing is sent, stored or scheduled. */
  isStopped(): boolean;
  /** Whether messages to `unit` go on the wire now: not stopped, and the mesh has not reported the unit unreachable. */
  canSend(unit: string): boolean;
  /** Reports messages refused at the boundary and unexpected internal errors. */
  onError(error: unknown): void;
}
