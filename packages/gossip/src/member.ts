/**
 * Members as the node's users see them, and as the node keeps them.
 */
import type { Tags, WireStatus } from './internal/messages';
import { WireStatus as WS } from './internal/messages';

/**
 * alive: answering probes. suspect: missed probes; it has until its
 * suspicion timeout to refute. failed: declared dead (tombstone until
 * reapTimeout). left: announced a graceful leave (tombstone until
 * tombstoneTimeout). A member in failed or left rejoins with a higher
 * incarnation.
 */
export type MemberStatus = 'alive' | 'suspect' | 'failed' | 'left';

export interface Member {
  readonly name: string;
  readonly address: string;
  readonly status: MemberStatus;
  readonly tags: Tags;
  /** Bumped by the member itself to refute suspicion, change tags, or rejoin. */
  readonly incarnation: number;
}

/** @internal a node's current view of one member (internal/member-table.ts keeps them by column). */
export interface MemberState {
  /** The member's name id (internal/member-table.ts). */
  readonly id: number;
  readonly name: string;
  readonly addr: string;
  readonly inc: number;
  readonly status: MemberStatus;
  readonly tags: Tags;
  /** Clock time of the last status change. */
  readonly stateChange: number;
}

export function snapshot(m: MemberState): Member {
  return Object.freeze({ name: m.name, address: m.addr, status: m.status, tags: m.tags, incarnation: m.inc });
}

export function toWireStatus(s: MemberStatus): WireStatus {
  switch (s) {
    case 'alive':
      return WS.Alive;
    case 'suspect':
      return WS.Suspect;
    case 'failed':
      return WS.Failed;
    case 'left':
      return WS.Left;
  }
}

export function tagsEqual(a: Tags, b: Tags): boolean {
  // Usually the very same (interned) object: no key arrays for that.
  if (a === b) return true;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}
