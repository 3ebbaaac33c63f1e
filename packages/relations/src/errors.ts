/**
 * Every error packages/relations raises carries a stable code. Messages say
 * what was wrong and how to fix it. Bad *remote* data is never thrown at the
 * agent: it is recorded in relation state as a relation error (see state.ts);
 * these errors are for mistakes a charm author or operator makes locally.
 */
export type RelationErrorCode =
  /** Charm metadata that does not parse (missing name, endpoint without interface...). */
  | 'REL_ERR_BAD_METADATA'
  /** An endpoint or relation names an interface nobody defined / registered. */
  | 'REL_ERR_UNKNOWN_INTERFACE'
  /** An endpoint name the charm does not declare. */
  | 'REL_ERR_UNKNOWN_ENDPOINT'
  /** Two endpoints that cannot be related (interface or role mismatch). */
  | 'REL_ERR_INCOMPATIBLE'
  /** A service related to itself on a non-peer endpoint. */
  | 'REL_ERR_SELF_RELATION'
  /** A relation id that is unknown, or already in use. */
  | 'REL_ERR_UNKNOWN_RELATION'
  | 'REL_ERR_DUPLICATE_RELATION'
  /** Data a charm tried to publish does not satisfy its side of the interface. */
  | 'REL_ERR_BAD_DATA'
  /** A non-leader tried to write the application-level bag of a peer relation. */
  | 'REL_ERR_NOT_LEADER'
  /** `relation(ctx, endpoint, side)` with a side that does not match the endpoint. */
  | 'REL_ERR_WRONG_SIDE'
  /** A link message that does not parse (dropped at the boundary, never applied). */
  | 'REL_ERR_BAD_MESSAGE'
  /** A link message in a protocol version this agent does not read (the message says which side to upgrade). */
  | 'REL_ERR_PROTOCOL_VERSION'
  /** A well-formed link message whose epoch, incarnation, sequence number or version jumps implausibly far ahead (refused, not adopted). */
  | 'REL_ERR_IMPLAUSIBLE'
  /** Options out of range or contradicting each other. */
  | 'REL_ERR_OPTIONS'
  /** An operation on a stopped RelationManager. */
  | 'REL_ERR_STOPPED';

export class RelationError extends Error {
  override readonly name = 'RelationError';
  readonly code: RelationErrorCode;

  constructor(code: RelationErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
