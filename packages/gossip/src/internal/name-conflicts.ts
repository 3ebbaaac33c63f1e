/**
 * Name conflicts: a member name claimed from a second address while its
 * owner is alive. The claim is refused (state.ts, node.ts), the claimant is
 * told (a Conflict message, at most once a second per address), and a node
 * told that its own name belongs to someone else reports it and fails its
 * join with GOSSIP_ERR_NAME_CONFLICT.
 */
import type { Clock } from '@rhizome/clock';
import { GossipError } from '../errors';
import type { GossipLogger } from '../logger';
import type { MemberState } from '../member';
import type { NameConflict } from '../node-options';
import { MessageType, type ConflictMsg, type Message } from './messages';

export interface NameConflictDeps {
  readonly name: string;
  readonly address: string;
  readonly clock: Clock;
  readonly logger: GossipLogger;
  readonly emit: (conflict: NameConflict) => void;
  readonly send: (addr: string, msgs: Message[]) => void;
  /** Fail the join in progress, if any. */
  readonly failJoin: (err: GossipError) => void;
}

export class NameConflicts {
  /** Claimant address → when it was last told. */
  private readonly notices = new Map<string, number>();

  constructor(private readonly d: NameConflictDeps) {}

  /** Tell a claimant that the name is taken (at most once a second per address). */
  notice(name: string, ownerAddr: string, claimantAddr: string): void {
    const now = this.d.clock.now();
    const last = this.notices.get(claimantAddr);
    if (last !== undefined && now - last < 1_000) return;
    if (this.notices.size > 1024) this.notices.clear();
    this.notices.set(claimantAddr, now);
    this.d.emit({ name, ownerAddress: ownerAddr, claimantAddress: claimantAddr });
    const msg: ConflictMsg = { t: MessageType.Conflict, node: name, addr: ownerAddr };
    this.d.send(claimantAddr, [msg]);
  }

  /** A member's name was claimed from `claimedAddr` (alive news from there, refused). */
  claimed(existing: MemberState, claimedAddr: string): void {
    this.d.logger.warn(
      { code: 'GOSSIP_ERR_NAME_CONFLICT', name: existing.name, ownerAddr: existing.addr, claimedAddr },
      `gossip: name "${existing.name}" claimed from ${claimedAddr} while its owner at ${existing.addr} is ${existing.status}; claim refused`,
    );
    this.notice(existing.name, existing.addr, claimedAddr);
  }

  /** A Conflict message from member `from`. */
  noticed(msg: ConflictMsg, from: string): void {
    const { name, address } = this.d;
    // Only news about our own name, from a member (not ourselves), pointing elsewhere, matters.
    if (msg.node !== name || msg.addr === address || from === name) return;
    this.d.logger.error(
      { code: 'GOSSIP_ERR_NAME_CONFLICT', name, ownerAddr: msg.addr, reportedBy: from },
      `gossip: our name "${name}" belongs to a live member at ${msg.addr}; pick a unique name`,
    );
    this.d.emit({ name, ownerAddress: msg.addr, claimantAddress: address });
    this.d.failJoin(
      new GossipError('GOSSIP_ERR_NAME_CONFLICT', `the name "${name}" is owned by a live member at ${msg.addr} (reported by ${from}); give this node a unique name`),
    );
  }

  /** Forget notices older than a second (called from the node's reap tick). */
  expire(): void {
    const now = this.d.clock.now();
    for (const [addr, t] of this.notices) if (now - t > 1_000) this.notices.delete(addr);
  }
}
