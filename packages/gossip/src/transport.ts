/**
 * The transport moves opaque frames between node addresses. It knows nothing
 * of SWIM: framing, encryption and message types live above it (codec.ts,
 * keyring.ts, messages.ts), so the WebSocket transport and the simulated
 * network carry exactly the same bytes.
 *
 * Contract:
 * - `send` never throws for network conditions and never blocks; delivery is
 *   best effort (the protocol above provides acks where it needs them).
 * - Frames sent to the same address are delivered in order while the
 *   underlying connection lives (true for WebSocket; the simulator may
 *   reorder only when told to).
 * - A stream transport reports `refused` / `reset` when the peer's host says
 *   nobody is listening: stronger evidence of a crash than a timeout, which
 *   the failure detector uses to suspect at once.
 */
export type Address = string; // "host:port" for WebSocket, any unique string in simulation

export type UnreachableReason =
  /** The peer's host actively refused the connection (no process listening). */
  | 'refused'
  /** An established connection was reset or closed abruptly by the peer. */
  | 'reset'
  /** Connecting or sending did not complete in time. */
  | 'timeout';

export interface TransportHandler {
  /**
   * A frame arrived. `remote` is the transport-level peer (for inbound
   * WebSocket connections an ephemeral port, so not a node address); the
   * sender's identity is inside the frame's envelope.
   */
  onFrame(frame: Uint8Array, remote: string): void;
  /** Frames to `to` could not be delivered, and why. */
  onUnreachable(to: Address, reason: UnreachableReason): void;
  /**
   * Optional, trusted in-process transports only (SimNetwork with
   * `trusted: true`): an envelope handed over as objects, never encoded.
   * The node skips decoding and message parsing for it.
   */
  onEnvelope?(env: DirectEnvelope, remote: string): void;
}

/**
 * An envelope of messages passed between nodes in one process without
 * encoding (simulation at scale). Messages are never mutated once sent, so
 * every receiver may share them (and the member records they carry).
 */
export interface DirectEnvelope {
  readonly from: string;
  readonly addr: string;
  readonly msgs: readonly unknown[];
}

export interface Transport {
  /** The address other nodes use to reach this one. */
  readonly address: Address;
  setHandler(handler: TransportHandler): void;
  send(to: Address, frame: Uint8Array): void;
  /**
   * Optional: present only on trusted in-process transports (simulation).
   * Sends messages as objects, without encoding; the node uses it instead
   * of `send` when present.
   */
  sendEnvelope?(to: Address, env: DirectEnvelope): void;
  /**
   * Optional (stream transports): the frame that just arrived from transport
   * peer `remote` was decoded and accepted as sent by the node at `addr`.
   * The transport may then use that connection to send to `addr` (see
   * ws-transport.ts for the rules).
   */
  peerAddress?(remote: string, addr: Address): void;
  /**
   * Optional (stream transports): true when a frame to `to` would go over a
   * connection that is already open or opening, i.e. costs no new handshake.
   * The node uses it to keep gossip from opening a connection to nearly
   * every member within a moment of a mass join.
   */
  connected?(to: Address): boolean;
  /** Stops listening and closes every connection; idempotent. */
  close(): Promise<void>;
}
