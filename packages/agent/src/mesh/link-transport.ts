/**
 * The relation manager's LinkTransport, backed by the gossip node's
 * best-effort direct messages (memberlist's SendBestEffort).
 *
 * One reliability layer: relation links already make up for loss,
 * duplication and reordering (sequence numbers, acks after commit,
 * retransmit, dedupe: packages/relations src/internal/link-receiver.ts), so they ride a
 * message with no acks of its own. Under the gossip reliable channel each
 * applied relation message cost a channel ack, a link ack, the link ack's
 * own channel ack and two independent retransmit timers.
 * Rolling upgrades: an older agent sends (and reads) link messages only on
 * the reliable channel. Both are received; a unit whose link messages came
 * on the reliable channel is answered there (until it sends a direct one),
 * so old and new agents keep their links during the upgrade (the first
 * direct messages to an old agent are lost, and retransmitted).
 *
 * Durability is the relation manager's: it sends a data message only once
 * the commit that numbered it is durable, and an ack only once the commit
 * that applied the message is (packages/relations link-context.ts), so this
 * transport hands messages to the mesh at once, in the order they are sent.
 *
 * Reachability: the mesh's failed/left make a unit unreachable (the manager
 * pauses retransmission to it); alive again (join, update) makes it
 * reachable and the manager re-syncs the link at once. A suspect stays
 * reachable, as memberlist keeps sending to suspects: a refuted suspicion
 * emits no event, so treating it as down would pause the link for good
 * (no acks, no pulls: issue 13, item 2).
 *
 * A message may be lost: links retransmit until acked, so an unsent or
 * refused message is only counted.
 */
import type { GossipNode, Member } from '@rhizome/gossip';
import type { LinkMessage, LinkTransport } from '@rhizome/relations';

/** Envelope kind of relation link messages (on direct messages, and on the reliable channel from older agents). */
export const LINK_ENVELOPE = 'rz.link';

export interface MeshLinkTransportStats {
  sent: number;
  received: number;
  sendFailures: number;
  /** Messages sent on the reliable channel, to units running an older agent. */
  sentReliable: number;
}

/** Units remembered as older agents at most (beyond, the oldest entry is dropped: it falls back to direct messages, then is learned again). */
const MAX_LEGACY_UNITS = 4_096;

export class MeshLinkTransport implements LinkTransport {
  readonly stats: MeshLinkTransportStats = { sent: 0, received: 0, sendFailures: 0, sentReliable: 0 };
  private closed = false;
  /** Units whose link messages arrive on the reliable channel: older agents, which read only that. */
  private readonly legacy = new Set<string>();

  constructor(private readonly node: GossipNode) {}

  send(toUnit: string, message: LinkMessage): void {
    if (this.closed || !this.node.running) return;
    this.stats.sent++;
    if (this.legacy.has(toUnit)) {
      this.stats.sentReliable++;
      this.node.sendReliable(toUnit, { k: LINK_ENVELOPE, m: message }).catch(() => {
        this.stats.sendFailures++;
      });
      return;
    }
    let sent = false;
    try {
      sent = this.node.sendBestEffort(toUnit, { k: LINK_ENVELOPE, m: message });
    } catch {
      // Too large for a frame: the manager bounds link messages below that, so this is a bug, counted.
    }
    if (!sent) this.stats.sendFailures++;
  }

  onMessage(handler: (fromUnit: string, message: unknown) => void): () => void {
    const receive = (from: string, payload: unknown, reliable: boolean): void => {
      if (this.closed) return;
      const p = payload as { k?: unknown; m?: unknown } | null;
      if (p === null || typeof p !== 'object' || p.k !== LINK_ENVELOPE) return;
      this.stats.received++;
      this.noteChannel(from, reliable);
      handler(from, p.m);
    };
    const offs = [this.node.onDirect((from, payload) => receive(from, payload, false)), this.node.onReliable((from, payload) => receive(from, payload, true))];
    return () => offs.forEach((off) => off());
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

  /** Answers a unit on the channel its link messages come on. */
  private noteChannel(from: string, reliable: boolean): void {
    if (!reliable) {
      this.legacy.delete(from);
      return;
    }
    if (this.legacy.has(from)) return;
    if (this.legacy.size >= MAX_LEGACY_UNITS) this.legacy.delete(this.legacy.values().next().value as string);
    this.legacy.add(from);
  }
}
