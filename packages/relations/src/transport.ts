/**
 * What the relation manager sends over. The agent implements it with the
 * gossip mesh's point-to-point channel; `SimLinkNetwork` (sim-transport.ts)
 * implements it in memory for tests. The transport may lose, duplicate and
 * reorder messages: links make up for all three. It should tell the manager
 * when a unit becomes unreachable or reachable again (the mesh's suspect /
 * alive), so retransmissions pause during a partition and a link re-syncs
 * as soon as it heals; without that, retransmits at the maximum backoff
 * still get there.
 */
import type { LinkMessage } from './messages';

export interface LinkTransport {
  /** Best effort: may drop, duplicate or reorder. Must not throw for an unreachable unit. */
  send(toUnit: string, message: LinkMessage): void;
  /** Registers the handler of incoming messages (unparsed: the manager checks them). Returns an unsubscribe function. */
  onMessage(handler: (fromUnit: string, message: unknown) => void): () => void;
  /** Optional: reachability changes of remote units. */
  onReachability?(handler: (unit: string, reachable: boolean) => void): () => void;
}
