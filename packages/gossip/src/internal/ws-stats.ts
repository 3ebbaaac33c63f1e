/** The WebSocket transport's counters (ws-transport.ts), as `stats()` reports them. */

export interface WsTransportStats {
  framesSent: number;
  bytesSent: number;
  framesReceived: number;
  bytesReceived: number;
  /** Outbound connection attempts / successes, inbound connections accepted. */
  connectsStarted: number;
  connectsOpened: number;
  inboundAccepted: number;
  /** onUnreachable reports by reason. */
  refused: number;
  resets: number;
  timeouts: number;
  /** Inbound connections bound to a sender's node address (used to send back; see the header). */
  inboundRoutes: number;
  /** Connections closed by our idle timer. */
  idleClosed: number;
  /** Outbound connections dropped because their ping went unanswered for deadConnectionMs. */
  deadClosed: number;
  /** Inbound connections closed because a message exceeded maxFrameSize. */
  oversizeClosed: number;
  /** Inbound connections closed for protocol errors or text messages. */
  protocolErrorsClosed: number;
  /** Inbound connections that died with a network error (peer crashed or reset). */
  inboundResets: number;
  /** Inbound connections refused because maxInboundConnections were open. */
  inboundRefused: number;
  /** Outbound frames dropped: above maxFrameSize, queue overflow, peer not reading, or undeliverable. */
  oversizeDropped: number;
  queueDropped: number;
  backpressureDropped: number;
  undeliveredDropped: number;
  /** Open connections right now. */
  openOutbound: number;
  openInbound: number;
}

/** What the transport counts; the open connections are counted when asked. */
export type Counters = Omit<WsTransportStats, 'openOutbound' | 'openInbound'>;

export function newCounters(): Counters {
  return {
    framesSent: 0,
    bytesSent: 0,
    framesReceived: 0,
    bytesReceived: 0,
    connectsStarted: 0,
    connectsOpened: 0,
    inboundAccepted: 0,
    inboundRoutes: 0,
    refused: 0,
    resets: 0,
    timeouts: 0,
    idleClosed: 0,
    deadClosed: 0,
    oversizeClosed: 0,
    protocolErrorsClosed: 0,
    inboundResets: 0,
    inboundRefused: 0,
    oversizeDropped: 0,
    queueDropped: 0,
    backpressureDropped: 0,
    undeliveredDropped: 0,
  };
}
