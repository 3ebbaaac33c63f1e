/** The WebSocket transport's options (ws-transport.ts), their defaults and why, and their checks. */
import { DEFAULT_MAX_FRAME_SIZE } from './codec';

export interface WsTransportOptions {
  /** Interface to listen on. */
  host?: string;
  /** Port to listen on; 0 picks a free one (read it back from `.port`). */
  port?: number;
  /** Address advertised to others; default `host:port`. */
  advertiseAddress?: string;
  /** Largest frame sent or accepted, bytes (match the codec's maxFrameSize). */
  maxFrameSize?: number;
  /** Close a connection after this long with no frame either way. */
  idleTimeoutMs?: number;
  /** Give up opening a connection after this long and report `timeout`. */
  connectTimeoutMs?: number;
  /** Frames queued per destination while its connection opens; the oldest is dropped beyond. */
  maxQueuedFrames?: number;
  /** Frames are dropped (and counted) while a connection has this many bytes unflushed. */
  maxBufferedBytes?: number;
  /** Inbound connections accepted at once; further ones are refused at the handshake (HTTP 503). */
  maxInboundConnections?: number;
  /** Drop an outbound connection whose ping has had no pong for this long (it is pinged every sixth of it). */
  deadConnectionMs?: number;
  /** Where to write the one line per notable drop; silent by default. */
  logger?: WireLogger;
}

/** The slice of pino's API (and of the node's GossipLogger) the transport uses. */
export interface WireLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ResolvedWsTransportOptions {
  readonly host: string;
  readonly port: number;
  readonly advertiseAddress: string | undefined;
  readonly maxFrameSize: number;
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly maxQueuedFrames: number;
  readonly maxBufferedBytes: number;
  readonly maxInboundConnections: number;
  readonly deadConnectionMs: number;
}

export const DEFAULT_WS_TRANSPORT_OPTIONS: ResolvedWsTransportOptions = Object.freeze({
  host: '127.0.0.1', // loopback unless told otherwise: never expose a node by accident
  port: 0, // pick a free port
  advertiseAddress: undefined, // host:port as bound
  maxFrameSize: DEFAULT_MAX_FRAME_SIZE, // 64 KiB, same as the codec's default
  idleTimeoutMs: 60_000, // a member is probed every few seconds at most, so busy links never idle out
  // Loopback/LAN connects take < 10 ms, but a CPU-starved peer (50 agents booting on 2 cores) can take
  // seconds to answer a handshake. Timing out drops the frames queued meanwhile, and a timeout is only
  // weak evidence the protocol does not act on, so wait as long as memberlist's TCP timeout (10 s).
  connectTimeoutMs: 10_000,
  maxQueuedFrames: 256, // a few seconds of gossip to one peer; older frames are stale anyway
  maxBufferedBytes: 4 * 1024 * 1024, // 64 max-size frames unflushed: the peer is not reading
  maxInboundConnections: 4096, // one per peer is normal; this only stops a connection flood
  // A pong takes a round trip; 30 s is three memberlist TCP timeouts, so only a connection that carries
  // nothing (black-holed) is dropped, never one to a starved peer. Pings every 5 s: 2 bytes each.
  deadConnectionMs: 30_000,
});

function positiveInt(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new TypeError(`${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

export function resolveWsTransportOptions(opts: WsTransportOptions = {}): ResolvedWsTransportOptions {
  const d = DEFAULT_WS_TRANSPORT_OPTIONS;
  const r: ResolvedWsTransportOptions = {
    host: opts.host ?? d.host,
    port: opts.port ?? d.port,
    advertiseAddress: opts.advertiseAddress ?? d.advertiseAddress,
    maxFrameSize: positiveInt('maxFrameSize', opts.maxFrameSize ?? d.maxFrameSize, 64),
    idleTimeoutMs: positiveInt('idleTimeoutMs', opts.idleTimeoutMs ?? d.idleTimeoutMs, 1),
    connectTimeoutMs: positiveInt('connectTimeoutMs', opts.connectTimeoutMs ?? d.connectTimeoutMs, 1),
    maxQueuedFrames: positiveInt('maxQueuedFrames', opts.maxQueuedFrames ?? d.maxQueuedFrames, 1),
    maxBufferedBytes: positiveInt('maxBufferedBytes', opts.maxBufferedBytes ?? d.maxBufferedBytes, 1),
    maxInboundConnections: positiveInt('maxInboundConnections', opts.maxInboundConnections ?? d.maxInboundConnections, 1),
    deadConnectionMs: positiveInt('deadConnectionMs', opts.deadConnectionMs ?? d.deadConnectionMs, 6),
  };
  if (!Number.isInteger(r.port) || r.port < 0 || r.port > 65535) {
    throw new TypeError(`port must be an integer in 0..65535, got ${String(r.port)}`);
  }
  if (r.maxBufferedBytes < r.maxFrameSize) {
    throw new TypeError('maxBufferedBytes must be at least maxFrameSize, or no frame could ever be sent');
  }
  return r;
}
