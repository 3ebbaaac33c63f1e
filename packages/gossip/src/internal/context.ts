/**
 * @internal What the mechanism files (state, probe, push-pull, user events,
 * queries, channel) need from their node: identity, time, randomness,
 * options, and the two ways to speak (direct send, queued broadcast).
 */
import type { Awareness } from '../awareness';
import type { Clock } from '@rhizome/clock';
import type { GossipLogger } from '../logger';
import type { Message } from './messages';
import type { GossipProfile } from '../options';
import type { Random } from '../prng';
import type { NodeStats } from '../stats';

export interface NodeContext {
  readonly name: string;
  readonly address: string;
  readonly clock: Clock;
  readonly random: Random;
  readonly profile: GossipProfile;
  readonly logger: GossipLogger;
  readonly awareness: Awareness;
  readonly stats: NodeStats;
  /**
   * Send messages to an address now; with `piggyback`, queued broadcasts ride
   * along. Messages from index `sharedFrom` on are immutable objects sent to
   * several members: their encodings are cached (codec.ts).
   */
  send(addr: string, msgs: Message[], piggyback?: boolean, sharedFrom?: number): void;
  /** Estimated cluster size (members not failed or left, self included). */
  numMembers(): number;
  /** Whether the node is still running (not shut down). */
  running(): boolean;
  /** Fresh broadcasts are queued: run a gossip round soon rather than at the next interval. */
  gossipSoon(): void;
  /**
   * A message carried an incarnation or Lamport time beyond bounds.ts: it
   * was refused; count it and report it with the frame's sender.
   */
  implausible(what: string): void;
}
