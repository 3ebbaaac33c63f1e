/**
 * Which link protocol version to write to each remote unit (memberlist's
 * min/max ranges): a unit's messages say which versions it reads (`vr`),
 * and from then on we write the highest version both read. A peer that
 * reads none of ours gets nothing (its messages are refused too), and is
 * reported once per range it announces.
 */
import { RelationError } from '../errors';
import { ANY_LINK_PROTOCOL, linkVersionFor, parseLinkMessage, senderRange, type LinkMessage, type LinkVersionRange, type OutgoingLinkMessage } from '../messages';

export class LinkVersions {
  /** Per remote unit: the link protocol versions it said it reads (learned from its messages). */
  private readonly peers = new Map<string, LinkVersionRange>();
  /** Remote units already reported as speaking no common version (reported once per range). */
  private readonly refused = new Map<string, string>();

  constructor(
    /** This unit. */
    private readonly unit: string,
    /** The versions this unit reads and writes. */
    readonly protocol: LinkVersionRange,
    private readonly onError: (error: unknown) => void,
  ) {}

  /**
   * Remembers the versions a remote unit reads, from a message it sent us
   * that is well-formed in some version (garbage teaches nothing).
   */
  learn(from: string, raw: unknown): void {
    const speaks = senderRange(raw);
    if (!speaks || from === this.unit) return;
    let m: LinkMessage;
    try {
      m = parseLinkMessage(raw, ANY_LINK_PROTOCOL);
    } catch {
      return;
    }
    if (m.from === from && m.to === this.unit) this.peers.set(from, speaks);
  }

  /** The message stamped in the highest version both read, with the range this unit reads; undefined (reported once) when there is none. */
  stamp(unit: string, message: OutgoingLinkMessage): LinkMessage | undefined {
    const theirs = this.peers.get(unit);
    const v = linkVersionFor(this.protocol, theirs);
    if (v === undefined) {
      const key = `${theirs?.min}-${theirs?.max}`;
      if (this.refused.get(unit) !== key) {
        this.refused.set(unit, key);
        const upgrade = (theirs?.max ?? 0) < this.protocol.min ? `upgrade the agent of ${unit}` : `upgrade this agent (${this.unit})`;
        this.onError(new RelationError('REL_ERR_PROTOCOL_VERSION', `${unit} reads link protocol v${theirs?.min}-v${theirs?.max}, ${this.unit} reads v${this.protocol.min}-v${this.protocol.max}: no common version, nothing is sent to it; ${upgrade}`));
      }
      return undefined;
    }
    return { ...message, v, vr: [this.protocol.min, this.protocol.max] } as LinkMessage;
  }

  /** Forgets what a remote unit said (it was removed for good). */
  forget(unit: string): void {
    this.peers.delete(unit);
    this.refused.delete(unit);
  }
}
