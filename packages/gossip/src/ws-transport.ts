/**
 * WebSocket transport: the Transport contract (transport.ts) over `ws`.
 *
 * Shape:
 * - One WebSocketServer per node, listening on `host:port` at path
 *   WS_PATH. An inbound connection starts receive-only: the transport does
 *   not know which node address (listening address) dialled it.
 * - An outbound pool keyed by destination address: at most one connection
 *   per destination, so frames to one address keep their order. A
 *   connection idle (no frame either way) for `idleTimeoutMs` is closed
 *   normally (code 1000) and reopened on the next send.
 * - Inbound routes (connection reuse): once the node above has decoded and
 *   accepted a frame from an inbound connection, it tells us the sender's
 *   node address (`peerAddress(remote, addr)`, from the frame's envelope).
 *   From then on, frames to that address go back over that inbound
 *   connection when we hold no outbound connection to it, so a pair of
 *   nodes needs one WebSocket handshake instead of two (each costs ~1 ms of
 *   CPU on both sides; a mass join of N nodes would otherwise open ~N² of
 *   them). Why the claimed address can be trusted: with a keyring, frames
 *   are authenticated (AES-GCM with the shared key), so only a member could
 *   have sent it; without one, the protocol already trusts envelope claims
 *   (any frame may say anything about any member, and the node only reports
 *   addresses that passed its own spoofing check), so a route adds no new
 *   power. Still, a mapping is never stolen: the first live inbound
 *   connection to claim an address keeps it until it closes, and each
 *   connection is bound to at most one address, once. An outbound
 *   connection, when there is one, is always preferred. When a routed
 *   inbound connection dies abruptly (1006, RST), it is reported as `reset`
 *   for its address, exactly like an outbound one.
 * - Dead connections: an outbound connection is pinged (WebSocket ping)
 *   every sixth of `deadConnectionMs`; one whose pong has not come back
 *   within `deadConnectionMs` is dropped without a report (the next send
 *   dials again). Without this, a connection black-holed by a partition
 *   or a machine's link going down stayed "open": TCP retransmits with
 *   exponential backoff (up to 2 minutes apart), so after the network
 *   healed, frames (a rejoining member's join answers among them) waited
 *   in it for minutes. A dead peer is not reported from here: silence is
 *   the failure detector's evidence, and a starved peer must not look
 *   crashed.
 * - Every frame is one binary WebSocket message. `maxPayload` is
 *   `maxFrameSize`: an oversized inbound message makes `ws` close that
 *   connection (1009); we count it and carry on. Outbound frames above the
 *   limit are dropped and counted, never sent (the peer would only hang up).
 *
 * Evidence, reported through `onUnreachable(to, reason)`:
 * - `refused`: the peer's host refused the TCP connection (ECONNREFUSED), or
 *   something other than a gossip node answered there. Nobody of ours listens.
 * - `reset`: an established outbound connection died abruptly: RST, or TCP
 *   closed without a WebSocket close frame (code 1006), as when the peer
 *   process is SIGKILLed or exits without shutting its transport down.
 *   Reported even when no frame was pending at that moment: every node
 *   holding a connection to a crashed peer learns of it at once instead of
 *   at its next send. A live peer never closes this way (our shutdown and
 *   idle timer send close frames), and the protocol only *suspects* on it.
 *   Frames still queued are dropped and counted.
 * - `timeout`: the connection (TCP + WebSocket handshake) did not open within
 *   `connectTimeoutMs`, or the host is unreachable.
 * A graceful close by the peer (close frame, e.g. its shutdown or idle
 * timer) is never reported.
 *
 * Invariants: `send` never throws and never blocks; frames queued while
 * connecting are bounded per destination (drop-oldest, counted); every
 * socket error is caught and counted, none can crash the process; after
 * `close()` nothing is listening and no timer or socket keeps Node alive.
 */
import { WebSocket, WebSocketServer } from 'ws';
import type { RawData } from 'ws';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Address, Transport, TransportHandler, UnreachableReason } from './transport';
import { connectFailureReason, toBytes, type Inbound, type Outbound } from './internal/ws-connection';
import { resolveWsTransportOptions, type ResolvedWsTransportOptions, type WireLogger, type WsTransportOptions } from './internal/ws-options';
import { newCounters, type Counters, type WsTransportStats } from './internal/ws-stats';

export type { WireLogger, WsTransportOptions } from './internal/ws-options';
export type { WsTransportStats } from './internal/ws-stats';

/** URL path every gossip listener serves; other paths get HTTP 400. */
export const WS_PATH = '/rhizome-gossip';

export interface WsTransport extends Transport {
  /** The port actually bound. */
  readonly port: number;
  stats(): WsTransportStats;
}

const noopLogger: WireLogger = { debug() {}, warn() {} };

/** Starts listening and resolves once the port is bound. */
export async function createWsTransport(options: WsTransportOptions = {}): Promise<WsTransport> {
  const o = resolveWsTransportOptions(options);
  const log = options.logger ?? noopLogger;
  const stats = newCounters();
  const server = new WebSocketServer({
    host: o.host,
    port: o.port,
    path: WS_PATH,
    maxPayload: o.maxFrameSize,
    perMessageDeflate: false,
    clientTracking: true,
    // A connection flood is refused at the handshake, before any per-connection state exists.
    verifyClient: (_info: unknown, done: (ok: boolean, code?: number, message?: string) => void) => {
      const full = server.clients.size >= o.maxInboundConnections;
      if (full) stats.inboundRefused++;
      done(!full, 503, 'too many gossip connections');
    },
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.once('listening', () => {
      server.off('error', onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return new WsTransportImpl(server, port, o, log, stats);
}

class WsTransportImpl implements WsTransport {
  readonly address: Address;
  readonly port: number;
  private handler: TransportHandler | undefined;
  private readonly pool = new Map<Address, Outbound>();
  private readonly inbound = new Map<WebSocket, Inbound>();
  /** Inbound connections by transport-level remote (ip:ephemeral port), for peerAddress. */
  private readonly inboundByRemote = new Map<string, Inbound>();
  /** Inbound connections bound to a node address: usable to send back (see the header). */
  private readonly routes = new Map<Address, Inbound>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly heartbeat: NodeJS.Timeout;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly server: WebSocketServer,
    port: number,
    private readonly o: ResolvedWsTransportOptions,
    private readonly log: WireLogger,
    private readonly counters: Counters,
  ) {
    this.port = port;
    this.address = o.advertiseAddress ?? `${o.host}:${port}`;
    server.on('connection', (ws, req) => this.accept(ws, req));
    server.on('error', (err) => this.log.warn({ err: err.message }, 'gossip ws server error'));
    // A quarter of the idle timeout (closes within 1.25× of it), at most every 15 s: an idle node wakes up rarely.
    this.sweeper = setInterval(() => this.sweepIdle(), Math.max(25, Math.min(15_000, Math.floor(o.idleTimeoutMs / 4))));
    this.sweeper.unref();
    this.heartbeat = setInterval(() => this.ping(), Math.floor(o.deadConnectionMs / 6));
    this.heartbeat.unref();
  }

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }

  stats(): WsTransportStats {
    let openOutbound = 0;
    for (const c of this.pool.values()) if (c.open) openOutbound++;
    return { ...this.counters, openOutbound, openInbound: this.inbound.size };
  }

  send(to: Address, frame: Uint8Array): void {
    if (this.closed) return;
    if (frame.length > this.o.maxFrameSize) {
      this.counters.oversizeDropped++;
      this.log.warn({ to, bytes: frame.length, max: this.o.maxFrameSize }, 'gossip frame above maxFrameSize not sent');
      return;
    }
    let c = this.pool.get(to);
    if (c === undefined) {
      const r = this.routes.get(to);
      if (r !== undefined && r.ws.readyState === WebSocket.OPEN) {
        this.writeInbound(r, frame);
        return;
      }
      c = this.connect(to);
    }
    if (c === undefined) return;
    if (!c.open) {
      if (c.queue.length >= this.o.maxQueuedFrames) {
        c.queue.shift();
        this.counters.queueDropped++;
      }
      c.queue.push(frame);
      return;
    }
    this.write(c, frame);
  }

  connected(to: Address): boolean {
    if (this.pool.has(to)) return true;
    const r = this.routes.get(to);
    return r !== undefined && r.ws.readyState === WebSocket.OPEN;
  }

  peerAddress(remote: string, addr: Address): void {
    if (this.closed || addr === this.address) return;
    const i = this.inboundByRemote.get(remote);
    if (i === undefined || i.addr !== undefined || i.ws.readyState !== WebSocket.OPEN) return;
    const held = this.routes.get(addr);
    // Never steal an established mapping: the first live connection to claim an address keeps it.
    if (held !== undefined && held !== i && held.ws.readyState === WebSocket.OPEN) return;
    i.addr = addr;
    this.routes.set(addr, i);
    this.counters.inboundRoutes++;
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    clearInterval(this.sweeper);
    clearInterval(this.heartbeat);
    const waits: Promise<void>[] = [];
    const closeSocket = (ws: WebSocket): void => {
      waits.push(
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          const t = setTimeout(() => {
            ws.terminate();
            resolve();
          }, 500);
          t.unref();
          ws.once('close', () => {
            clearTimeout(t);
            resolve();
          });
          if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
          else ws.close(1001, 'node shutting down');
        }),
      );
    };
    for (const c of this.pool.values()) {
      c.closingOnPurpose = true;
      if (c.connectTimer) clearTimeout(c.connectTimer);
      closeSocket(c.ws);
    }
    for (const ws of this.inbound.keys()) closeSocket(ws);
    this.closing = (async () => {
      await Promise.all(waits);
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.pool.clear();
      this.inbound.clear();
      this.inboundByRemote.clear();
      this.routes.clear();
    })();
    return this.closing;
  }

  // --- outbound -----------------------------------------------------------

  private connect(to: Address): Outbound | undefined {
    let ws: WebSocket;
    try {
      ws = new WebSocket(`ws://${to}${WS_PATH}`, {
        maxPayload: this.o.maxFrameSize,
        perMessageDeflate: false,
        followRedirects: false,
      });
    } catch (err) {
      // Not an address we can even dial (syntax): nobody of ours can be there.
      this.log.warn({ to, err: (err as Error).message }, 'gossip: cannot dial address');
      this.counters.undeliveredDropped++;
      // Never call the handler from inside send(): the protocol may be mid-update.
      queueMicrotask(() => this.report(to, 'refused'));
      return undefined;
    }
    this.counters.connectsStarted++;
    const c: Outbound = {
      to,
      ws,
      open: false,
      queue: [],
      lastActive: performance.now(),
      closingOnPurpose: false,
      connectTimer: undefined,
      done: false,
      pingSentAt: undefined,
    };
    this.pool.set(to, c);
    let lastError: (Error & { code?: string }) | undefined;
    c.connectTimer = setTimeout(() => {
      c.connectTimer = undefined;
      if (c.open || c.done) return;
      this.fail(c, 'timeout', 'connect timed out');
      ws.terminate();
    }, this.o.connectTimeoutMs);
    c.connectTimer.unref();

    ws.on('open', () => {
      if (c.connectTimer) clearTimeout(c.connectTimer);
      c.connectTimer = undefined;
      if (c.done) return;
      c.open = true;
      c.lastActive = performance.now();
      this.counters.connectsOpened++;
      const queued = c.queue;
      c.queue = [];
      for (const f of queued) this.write(c, f);
    });
    ws.on('message', (data, isBinary) => {
      // Peers do not normally talk back on our outbound connection, but a
      // frame is a frame: deliver it, attributed to the address we dialled.
      c.lastActive = performance.now();
      this.receive(data, isBinary, to, ws);
    });
    ws.on('pong', () => {
      c.pingSentAt = undefined;
    });
    ws.on('unexpected-response', (_req, res) => {
      // 503: a gossip listener at its connection limit (alive, so weak evidence only).
      // Anything else: something answered HTTP but is not a gossip listener.
      const busy = res.statusCode === 503;
      lastError = Object.assign(new Error(`unexpected HTTP ${res.statusCode}`), { code: busy ? 'EBUSY' : 'EUNEXPECTED' });
      res.resume();
      ws.terminate();
    });
    ws.on('error', (err: Error & { code?: string }) => {
      lastError ??= err;
    });
    ws.on('close', (code) => {
      if (c.connectTimer) clearTimeout(c.connectTimer);
      c.connectTimer = undefined;
      if (this.pool.get(to) === c) this.pool.delete(to);
      if (c.done || c.closingOnPurpose || this.closed) {
        c.done = true;
        return;
      }
      if (!c.open) {
        const reason = connectFailureReason(lastError);
        this.fail(c, reason, lastError?.message ?? `closed before opening (code ${code})`);
        return;
      }
      // Established connection. 1006 = no close frame (process died / RST).
      const abrupt = code === 1006 || lastError !== undefined;
      if (abrupt) {
        this.fail(c, 'reset', lastError?.message ?? `connection closed abruptly (code ${code})`);
      } else {
        // Graceful close by the peer (shutdown, idle): forget it; the next send reconnects.
        c.done = true;
        this.counters.undeliveredDropped += c.queue.length;
        c.queue = [];
      }
    });
    return c;
  }

  private write(c: Outbound, frame: Uint8Array): void {
    this.sendOn(c, frame, (err) => {
      if (!c.done && !c.closingOnPurpose) {
        // The close handler decides what to report; here we only make sure it counts as abrupt.
        this.log.debug({ to: c.to, err: err.message }, 'gossip: write failed');
      }
    });
  }

  /** A frame back to a peer over its own (inbound) connection. */
  private writeInbound(i: Inbound, frame: Uint8Array): void {
    this.sendOn(i, frame, (err) => this.log.debug({ to: i.addr, err: err.message }, 'gossip: write on inbound connection failed'));
  }

  /** Sends a frame on a connection unless the peer has stopped reading (then it is dropped and counted). */
  private sendOn(conn: { readonly ws: WebSocket; lastActive: number }, frame: Uint8Array, onError: (err: Error) => void): void {
    if (conn.ws.bufferedAmount + frame.length > this.o.maxBufferedBytes) {
      this.counters.backpressureDropped++;
      return;
    }
    conn.lastActive = performance.now();
    this.counters.framesSent++;
    this.counters.bytesSent += frame.length;
    conn.ws.send(frame, { binary: true }, (err) => {
      if (err && !this.closed) onError(err);
    });
  }

  /** Drops what is queued for `c`, forgets it, and tells the handler once. */
  private fail(c: Outbound, reason: UnreachableReason, detail: string): void {
    if (c.done) return;
    c.done = true;
    if (this.pool.get(c.to) === c) this.pool.delete(c.to);
    this.counters.undeliveredDropped += c.queue.length;
    c.queue = [];
    this.log.debug({ to: c.to, reason, detail }, 'gossip: peer unreachable');
    this.report(c.to, reason);
  }

  private report(to: Address, reason: UnreachableReason): void {
    if (reason === 'refused') this.counters.refused++;
    else if (reason === 'reset') this.counters.resets++;
    else this.counters.timeouts++;
    if (this.closed) return;
    try {
      this.handler?.onUnreachable(to, reason);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'gossip: onUnreachable handler threw');
    }
  }

  // --- inbound ------------------------------------------------------------

  private accept(ws: WebSocket, req: IncomingMessage): void {
    if (this.closed) {
      ws.terminate();
      return;
    }
    this.counters.inboundAccepted++;
    const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`;
    const state: Inbound = { ws, remote, lastActive: performance.now(), addr: undefined };
    this.inbound.set(ws, state);
    this.inboundByRemote.set(remote, state);
    let abrupt = false;
    ws.on('message', (data, isBinary) => {
      state.lastActive = performance.now();
      this.receive(data, isBinary, remote, ws);
    });
    ws.on('error', (err: Error & { code?: string }) => {
      // ws closes the connection itself after a protocol error (1002/1007/1009).
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        this.counters.oversizeClosed++;
        this.log.warn({ remote, max: this.o.maxFrameSize }, 'gossip: inbound message above maxFrameSize, connection closed');
      } else if (!err.code?.startsWith('WS_ERR_')) {
        // ECONNRESET and friends: the peer went away (reported on close if we know its node address).
        abrupt = true;
        this.counters.inboundResets++;
        this.log.debug({ remote, err: err.message, code: err.code }, 'gossip: inbound connection reset');
      } else {
        this.counters.protocolErrorsClosed++;
        this.log.warn({ remote, err: err.message, code: err.code }, 'gossip: inbound connection error, closed');
      }
    });
    ws.on('close', (code) => {
      this.inbound.delete(ws);
      if (this.inboundByRemote.get(remote) === state) this.inboundByRemote.delete(remote);
      const addr = state.addr;
      if (addr === undefined || this.routes.get(addr) !== state) return;
      this.routes.delete(addr);
      // A routed peer that died without a close frame: the same evidence as a reset outbound connection.
      if ((abrupt || code === 1006) && !this.closed) this.report(addr, 'reset');
    });
  }

  private receive(data: RawData, isBinary: boolean, remote: string, ws: WebSocket): void {
    if (!isBinary) {
      this.counters.protocolErrorsClosed++;
      this.log.warn({ remote }, 'gossip: text message on a gossip connection, closed');
      ws.close(1003, 'binary frames only');
      return;
    }
    const frame = toBytes(data);
    this.counters.framesReceived++;
    this.counters.bytesReceived += frame.length;
    if (this.closed) return;
    try {
      this.handler?.onFrame(frame, remote);
    } catch (err) {
      this.log.warn({ remote, err: (err as Error).message }, 'gossip: frame handler threw');
    }
  }

  /** Pings each open outbound connection; drops one whose last ping went unanswered for deadConnectionMs. */
  private ping(): void {
    const now = performance.now();
    for (const c of [...this.pool.values()]) {
      if (!c.open || c.done || c.closingOnPurpose) continue;
      if (c.pingSentAt === undefined) {
        c.pingSentAt = now;
        try {
          c.ws.ping();
        } catch {
          // closing meanwhile: its close handler runs
        }
      } else if (now - c.pingSentAt >= this.o.deadConnectionMs) {
        c.closingOnPurpose = true;
        this.pool.delete(c.to);
        this.counters.deadClosed++;
        this.counters.undeliveredDropped += c.queue.length;
        c.queue = [];
        this.log.debug({ to: c.to }, 'gossip: connection dropped, its ping went unanswered (black-holed?); the next send dials again');
        c.ws.terminate();
      }
    }
  }

  private sweepIdle(): void {
    const now = performance.now();
    for (const c of [...this.pool.values()]) {
      if (c.open && c.queue.length === 0 && c.ws.bufferedAmount === 0 && now - c.lastActive >= this.o.idleTimeoutMs) {
        c.closingOnPurpose = true;
        this.pool.delete(c.to);
        this.counters.idleClosed++;
        c.ws.close(1000, 'idle');
      }
    }
    for (const [ws, s] of this.inbound) {
      if (now - s.lastActive >= this.o.idleTimeoutMs && ws.readyState === WebSocket.OPEN) {
        this.counters.idleClosed++;
        ws.close(1000, 'idle');
      }
    }
  }
}
