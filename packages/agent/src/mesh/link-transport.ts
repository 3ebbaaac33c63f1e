/**
 * The relation manager's LinkTransport, backed by the gossip node's reliable
 * point-to-point channel.
 *
 * Durability is the relation manager's: it sends a message only after the
 * link store's flush (the record holding it is durable) or after the commit
 * it acks is durable (packages/relations link-context.ts), so this transport
 * hands messages to the mesh at once, in the order they are sent.
 *
 * Reachability: the mesh's failed/left make a unit unreachable (the manager
 * pauses retransmission to it); alive again (join, update) makes it
 * reachable and the manager re-syncs the link at once. A suspect stays
 * reachable, as memberlist keeps sending to suspects: a refuted suspicion
 * emits no event, so treating it as down would pause the link for good
 * (no acks, no pulls: issue 13, item 2).
 *
 * The channel may still lose a message (the member fails mid-way): links
 * retransmit until acked, so a rejected `sendReliable` is only counted.
 */
import type { GossipNode, Member } from '@rhizome/gossip';
import type { LinkMessage, LinkTransport } from '@rhizome/relations';

/** Envelope kind of relation link messages on the reliable channel. */
export const LINK_ENVELOPE = 'rz.link';

export interface MeshLinkTransportStats {
  sent: number;
  received: number;
  sendFailures: number;
}

export class MeshLinkTransport implements LinkTransport {
  readonly stats: MeshLinkTransportStats = { sent: 0, received: 0, sendFailures: 0 };
  private closed = false;

  constructor(private readonly node: GossipNode) {}

  send(toUnit: string, message: LinkMessage): void {
    if (this.closed || !this.node.running) return;
    this.stats.sent++;
    this.node.sendReliable(toUnit, { k: LINK_ENVELOPE, m: message }).catch(() => {
      this.stats.sendFailures++;
    });
  }

  onMessage(handler: (fromUnit: string, message: unknown) => void): () => void {
    return this.node.onReliable((from, payload) => {
      if (this.closed) return;
      const p = payload as { k?: unknown; m?: unknown } | null;
      if (p === null || typeof p !== 'object' || p.k !== LINK_ENVELOPE) return;
      this.stats.received++;
      handler(from, p.m);
    });
  }

  onReachability(handler: (unit: string, reachable: boolean) => void): () => void {
    const down = (m: Member): void => handler(m.name, false);
    const up = (m: Member): void => {
      if (m.status === 'alive') handler(m.name, true);
    };
    const offs = [
      this.node.on('member-failed', down),
      this.node.on('member-leave', down),
      this.node.on('member-join', up),
      this.node.on('member-update', up),
    ];
    return () => offs.forEach((off) => off());
  }

  close(): void {
    this.closed = true;
  }
}
