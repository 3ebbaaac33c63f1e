/**
 * Why a frame was refused (or could not be built), with a stable code. Its
 * own module so that the codec and the version check (versions.ts), which
 * the codec calls, both throw it without importing each other.
 */
export type FrameErrorCode =
  /** Frame is larger than maxFrameSize. */
  | 'GOSSIP_ERR_FRAME_TOO_LARGE'
  /** Not a frame: bad tag, bad msgpack, disallowed types, or invalid envelope fields. */
  | 'GOSSIP_ERR_MALFORMED_FRAME'
  /** Envelope carries a protocol version this node does not speak. */
  | 'GOSSIP_ERR_VERSION'
  /** Encrypted frame that no installed key authenticates (wrong key or tampered). */
  | 'GOSSIP_ERR_DECRYPT'
  /** Plaintext frame received while a keyring is configured. */
  | 'GOSSIP_ERR_PLAINTEXT_REFUSED'
  /** Encrypted frame received while no keyring is configured. */
  | 'GOSSIP_ERR_NO_KEYRING'
  /** Frame from another cluster: its label differs from ours, or one side has none. */
  | 'GOSSIP_ERR_LABEL'
  /** (encode) A single message does not fit in a frame of maxFrameSize. */
  | 'GOSSIP_ERR_MESSAGE_TOO_LARGE'
  /** (encode) A message or envelope field holds something that is not plain data. */
  | 'GOSSIP_ERR_UNENCODABLE';

export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    readonly code: FrameErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
