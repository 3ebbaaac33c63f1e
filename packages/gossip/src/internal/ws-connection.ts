/** What the WebSocket transport (ws-transport.ts) keeps per connection, and how a failed dial reads as evidence. */
import type { RawData, WebSocket } from 'ws';
import type { Address, UnreachableReason } from '../transport';

/** An inbound connection: receive-only until bound to the sender's node address. */
export interface Inbound {
  readonly ws: WebSocket;
  readonly remote: string;
  lastActive: number;
  /** The node address this connection was bound to (peerAddress), if any. */
  addr: Address | undefined;
}

/** An outbound connection, at most one per destination (frames to one address keep their order). */
export interface Outbound {
  readonly to: Address;
  readonly ws: WebSocket;
  open: boolean;
  queue: Uint8Array[];
  lastActive: number;
  /** We closed it on purpose (idle, shutdown): do not report. */
  closingOnPurpose: boolean;
  connectTimer: NodeJS.Timeout | undefined;
  /** Already reported and forgotten. */
  done: boolean;
  /** When the unanswered ping went out (performance.now()), if one is out. */
  pingSentAt: number | undefined;
}

/** A received message as one byte array (`ws` may hand over fragments or an ArrayBuffer). */
export function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

/** What a connection that never opened says about its peer (the `onUnreachable` reason). */
export function connectFailureReason(err: (Error & { code?: string }) | undefined): UnreachableReason {
  switch (err?.code) {
    case 'ECONNREFUSED':
    case 'EUNEXPECTED': // an HTTP server, not a gossip node, is there
      return 'refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'reset';
    default:
      // EHOSTUNREACH, ETIMEDOUT, DNS failures...: the host did not say nobody listens.
      return 'timeout';
  }
}
