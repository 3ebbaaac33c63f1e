/**
 * Typed errors of the gossip mesh. Each carries a stable `code` so callers
 * branch on it instead of on message text, and a message that says what to do.
 * (Frame-level errors live in codec.ts as `FrameError`; key errors in
 * keyring.ts as `KeyringError`.)
 */
export type GossipErrorCode =
  /** An option was invalid or contradicted another (also thrown as TypeError by resolveOptions). */
  | 'GOSSIP_ERR_OPTIONS'
  /** The node was shut down (or has left) and cannot do this any more. */
  | 'GOSSIP_ERR_NOT_RUNNING'
  /** No seed answered the join in time. */
  | 'GOSSIP_ERR_JOIN_FAILED'
  /** Another live node already owns this node's name. */
  | 'GOSSIP_ERR_NAME_CONFLICT'
  /** A user event's encoded name + payload exceeds `userEventSizeLimit`. */
  | 'GOSSIP_ERR_EVENT_TOO_LARGE'
  /** A query or query response exceeds its size limit. */
  | 'GOSSIP_ERR_QUERY_TOO_LARGE'
  /** A user event or query payload nests deeper than MAX_PAYLOAD_DEPTH (its frame would be refused). */
  | 'GOSSIP_ERR_PAYLOAD_TOO_DEEP'
  /** The reliable channel could not deliver: the member failed, left, or never acked. */
  | 'GOSSIP_ERR_UNREACHABLE'
  /** A reliable send named a member this node does not know. */
  | 'GOSSIP_ERR_UNKNOWN_MEMBER'
  /** A reliable payload does not fit in one frame. */
  | 'GOSSIP_ERR_MESSAGE_TOO_LARGE'
  /** A key operation on a node without a keyring (gossip is not encrypted). */
  | 'GOSSIP_ERR_NO_KEYRING'
  /** A query name under the reserved prefix `_gossip:` (the node's own queries). */
  | 'GOSSIP_ERR_RESERVED_NAME';

export class GossipError extends Error {
  override readonly name = 'GossipError';
  constructor(
    readonly code: GossipErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export type UnreachableReason = 'failed' | 'left' | 'timeout' | 'shutdown';

/** The reliable channel gave up on a member; `reason` says why. */
export class UnreachableError extends GossipError {
  constructor(
    readonly member: string,
    readonly reason: UnreachableReason,
  ) {
    super(
      'GOSSIP_ERR_UNREACHABLE',
      reason === 'timeout'
        ? `member "${member}" did not acknowledge reliable messages after every retransmit; it may be partitioned or overloaded; retry later or wait for a membership event`
        : reason === 'shutdown'
          ? `this node shut down before member "${member}" acknowledged`
          : `member "${member}" ${reason === 'left' ? 'left the cluster' : 'was declared failed'}; messages not yet acknowledged were not delivered`,
    );
  }
}

/** Why a message decoded from a valid frame was refused by `parseMessage`. */
export type MessageErrorCode = 'GOSSIP_ERR_UNKNOWN_TYPE' | 'GOSSIP_ERR_MALFORMED_MESSAGE';

export class MessageError extends Error {
  override readonly name = 'MessageError';
  constructor(
    readonly code: MessageErrorCode,
    message: string,
  ) {
    super(message);
  }
}
