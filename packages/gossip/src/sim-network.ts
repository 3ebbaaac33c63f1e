/**
 * An in-memory network on virtual time (@rhizome/clock's VirtualClock), so
 * the real protocol code runs deterministically, fast, and at scale (1,000
 * nodes in one process). Time only moves when the test calls
 * `net.clock.advance(ms)` or `runUntil(pred, ms)`.
 *
 * SimNetwork hands out one Transport per address. A frame sent at t arrives
 * at t + latency, where latency is drawn per frame from the link's range with
 * the network's seeded PRNG. Per link (or per node) one can set loss,
 * duplication and reordering; FIFO per link holds unless reordering is on.
 * Fault models:
 * - `kill(addr)`: like a crashed process on a live host: frames to it make
 *   the sender's transport report `refused` one round trip later; it sends
 *   nothing. Peers that exchanged frames with it within `connectionIdleMs`
 *   (they would hold a pooled connection, up to `maxConnections` per node)
 *   see `reset` one latency later, as the kernel resets the dead process's
 *   sockets. A new transport may be created at the same address (restart).
 * - `silence(addr)`: a hung host: every frame to or from it vanishes, no
 *   error is ever reported. `unsilence` restores it.
 * - `slow(addr, ms)`: a CPU-starved member: its inbound and outbound frames
 *   each take `ms` longer.
 * - `partition(groups...)`: frames between different groups vanish
 *   (addresses in no group form one more group); `heal()` ends it.
 */
import { VirtualClock, type ScheduledTimer } from '@rhizome/clock';
import { seededRandom, type Random } from './prng';
import type { Address, DirectEnvelope, Transport, TransportHandler } from './transport';

export interface LinkConditions {
  /** One-way latency in ms: a fixed value or a [min, max] range drawn uniformly per frame. */
  latency?: number | readonly [number, number];
  /** Probability in [0, 1] that a frame is dropped. */
  loss?: number;
  /** Probability in [0, 1] that a frame is delivered twice. */
  duplicate?: number;
  /** Allow frames on this link to overtake each other (default false: FIFO). */
  reorder?: boolean;
}

export interface SimNetworkOptions extends LinkConditions {
  /**
   * Trusted in-process nodes: messages travel as objects, never encoded,
   * decoded or parsed (transports offer `sendEnvelope`), and receivers share
   * them. For simulations at scale (the benchmark); tests keep the default
   * (false), which runs every frame through the real codec.
   */
  trusted?: boolean;
  /** PRNG seed; the same seed and the same calls replay the same run. */
  seed?: number;
  /** A pair that exchanged frames within this long holds a connection (reset on kill). Default 30 s; 0 disables resets. */
  connectionIdleMs?: number;
  /** Connections remembered per address (most recent kept). Default 64. */
  maxConnections?: number;
}

export interface SimNetworkStats {
  framesSent: number;
  framesDelivered: number;
  framesDropped: number;
  bytesSent: number;
}

interface Endpoint {
  address: Address;
  /** FIFO per link: latest arrival time scheduled per destination (entries in the past are pruned). */
  lastArrival: Map<Endpoint, number>;
  /** Prune lastArrival when it reaches this size (doubles when pruning frees little). */
  pruneAt: number;
  /** Peers with a (virtual) open connection: address → last frame time, most recent last. */
  contacts: Map<Address, number>;
  open: boolean;
  transport: SimTransport;
  framesSent: number;
  bytesSent: number;
}

/**
 * A frame (or trusted envelope) in flight: one heap entry, no closure.
 * Recycled once it has arrived (SimNetwork.spare): frames to a slowed member
 * stay in flight for seconds, long enough to be promoted to V8's old
 * generation, so a fresh object per frame made most of the simulator's GC.
 */
class FrameDelivery implements ScheduledTimer {
  seq = 0;
  fn: ((this: ScheduledTimer) => void) | null = deliverFrame;
  constructor(
    public at: number,
    readonly net: SimNetwork,
    public from: Address,
    /** The receiving process (a restart is a new Endpoint: frames to the old one are lost). */
    public to: Endpoint,
    public payload: Uint8Array | DirectEnvelope | null,
  ) {}
}

function deliverFrame(this: ScheduledTimer): void {
  const d = this as FrameDelivery;
  d.net.arrive(d);
}

class SimTransport implements Transport {
  sendEnvelope?: (to: Address, env: DirectEnvelope) => void;
  /** This process's endpoint (set by createTransport): the network looks nothing up per frame. */
  ep!: Endpoint;
  constructor(
    readonly address: Address,
    private readonly net: SimNetwork,
    readonly endpoint: { handler: TransportHandler | null; open: boolean },
  ) {}
  setHandler(handler: TransportHandler): void {
    this.endpoint.handler = handler;
  }
  send(to: Address, frame: Uint8Array): void {
    this.net.deliver(this.address, to, frame, this);
  }
  /** @internal installed as `sendEnvelope` on trusted networks only. */
  sendDirect(to: Address, env: DirectEnvelope): void {
    this.net.deliver(this.address, to, env, this);
  }
  close(): Promise<void> {
    if (this.endpoint.open) this.net.detach(this);
    return Promise.resolve();
  }
}

export class SimNetwork {
  readonly clock = new VirtualClock();
  readonly random: Random;
  private readonly defaults: Required<Omit<LinkConditions, 'latency'>> & { latency: readonly [number, number] };
  private readonly endpoints = new Map<Address, Endpoint>();
  private readonly links = new Map<string, LinkConditions>();
  private readonly nodeConditions = new Map<Address, LinkConditions>();
  private readonly silenced = new Set<Address>();
  private readonly slowBy = new Map<Address, number>();
  private groups: Map<Address, number> | null = null;
  private readonly connectionIdleMs: number;
  private readonly maxConnections: number;
  private readonly trusted: boolean;
  /** Arrived deliveries for reuse (at most as many as were ever in flight at once). */
  private readonly spare: FrameDelivery[] = [];
  readonly stats: SimNetworkStats = { framesSent: 0, framesDelivered: 0, framesDropped: 0, bytesSent: 0 };

  constructor(options: SimNetworkOptions = {}) {
    this.random = seededRandom(options.seed ?? 1);
    this.connectionIdleMs = options.connectionIdleMs ?? 30_000;
    this.maxConnections = options.maxConnections ?? 64;
    this.trusted = options.trusted ?? false;
    this.defaults = {
      latency: toRange(options.latency ?? [1, 5]),
      loss: options.loss ?? 0,
      duplicate: options.duplicate ?? 0,
      reorder: options.reorder ?? false,
    };
  }

  /** A deterministic PRNG for one node, derived from the network's seed. */
  forkRandom(): Random {
    return seededRandom(Math.floor(this.random() * 2 ** 32));
  }

  /** Create the transport for `address` (again, after a kill or close: a restart). */
  createTransport(address: Address): Transport {
    const existing = this.endpoints.get(address);
    if (existing?.open) throw new Error(`SimNetwork: address ${address} is already in use`);
    const transport = new SimTransport(address, this, { handler: null, open: true });
    if (this.trusted) transport.sendEnvelope = (to, env) => transport.sendDirect(to, env);
    const ep: Endpoint = { address, lastArrival: new Map(), pruneAt: 64, contacts: new Map(), open: true, transport, framesSent: 0, bytesSent: 0 };
    transport.ep = ep;
    this.endpoints.set(address, ep);
    return transport;
  }

  /** Frames sent by one address so far (for messages-per-member figures). */
  sentBy(address: Address): { frames: number; bytes: number } {
    const ep = this.endpoints.get(address);
    return { frames: ep?.framesSent ?? 0, bytes: ep?.bytesSent ?? 0 };
  }

  /** Conditions for frames from `from` to `to` (one direction). */
  setLink(from: Address, to: Address, conditions: LinkConditions): void {
    this.links.set(`${from}\u0000${to}`, conditions);
  }

  /** Conditions for every frame to or from `address` (link settings take precedence). */
  setNode(address: Address, conditions: LinkConditions): void {
    this.nodeConditions.set(address, conditions);
  }

  /** Change the network-wide defaults (e.g. loss) mid-run. */
  setDefaults(conditions: LinkConditions): void {
    if (conditions.latency !== undefined) this.defaults.latency = toRange(conditions.latency);
    if (conditions.loss !== undefined) this.defaults.loss = conditions.loss;
    if (conditions.duplicate !== undefined) this.defaults.duplicate = conditions.duplicate;
    if (conditions.reorder !== undefined) this.defaults.reorder = conditions.reorder;
  }

  /** A crashed process: frames to it are refused, it sends nothing. */
  kill(address: Address): void {
    const ep = this.endpoints.get(address);
    if (!ep || !ep.open) return;
    ep.open = false;
    ep.transport.endpoint.handler = null;
    ep.transport.endpoint.open = false;
    // Its connections are reset by its host: each live peer holding one hears of it one latency later.
    const now = this.clock.now();
    for (const [peer, last] of ep.contacts) {
      if (now - last > this.connectionIdleMs) continue;
      const other = this.endpoints.get(peer);
      if (!other || !other.open || this.silenced.has(peer) || this.partitioned(address, peer)) continue;
      const target = other.transport;
      this.clock.setTimeout(() => {
        const cur = this.endpoints.get(peer);
        if (cur && cur.open && cur.transport === target) target.endpoint.handler?.onUnreachable(address, 'reset');
      }, this.draw(this.conditions(address, peer).latency));
    }
    ep.contacts.clear();
  }

  /** A hung host: frames to and from it vanish without any error. */
  silence(address: Address): void {
    this.silenced.add(address);
  }

  unsilence(address: Address): void {
    this.silenced.delete(address);
  }

  /** A slow member: each of its frames, in and out, takes `ms` longer (0 restores). */
  slow(address: Address, ms: number): void {
    if (ms > 0) this.slowBy.set(address, ms);
    else this.slowBy.delete(address);
  }

  /** Split the network: frames between different groups vanish. Unlisted addresses form one more group. */
  partition(...groups: Address[][]): void {
    this.groups = new Map();
    groups.forEach((g, i) => g.forEach((a) => this.groups?.set(a, i)));
  }

  heal(): void {
    this.groups = null;
  }

  /** @internal used by SimTransport. */
  detach(t: SimTransport): void {
    const ep = this.endpoints.get(t.address);
    if (ep && ep.transport === t) ep.open = false;
    t.endpoint.handler = null;
    t.endpoint.open = false;
  }

  /** @internal used by SimTransport. */
  deliver(from: Address, to: Address, payload: Uint8Array | DirectEnvelope, sender: SimTransport): void {
    // A dead process sends nothing. (An endpoint replaced by a restart was closed first: createTransport checks.)
    const src = sender.ep;
    if (!src.open) return;
    const bytes = payload instanceof Uint8Array ? payload.byteLength : 0;
    this.stats.framesSent++;
    this.stats.bytesSent += bytes;
    src.framesSent++;
    src.bytesSent += bytes;
    if (this.silenced.size > 0 && (this.silenced.has(from) || this.silenced.has(to))) {
      this.stats.framesDropped++;
      return;
    }
    if (this.partitioned(from, to)) {
      this.stats.framesDropped++;
      return;
    }
    const cond = this.conditions(from, to);
    const dst = this.endpoints.get(to);
    let latency = this.draw(cond.latency);
    if (this.slowBy.size > 0) latency += (this.slowBy.get(from) ?? 0) + (this.slowBy.get(to) ?? 0);
    if (!dst || !dst.open) {
      // Nobody listening: the peer's host refuses, which the sender learns one round trip later.
      this.stats.framesDropped++;
      this.clock.setTimeout(() => {
        if (src.open && src.transport === sender) src.transport.endpoint.handler?.onUnreachable(to, 'refused');
      }, 2 * latency);
      return;
    }
    if (cond.loss > 0 && this.random() < cond.loss) {
      this.stats.framesDropped++;
      return;
    }
    if (this.connectionIdleMs > 0) {
      this.touch(src, to);
      this.touch(dst, from);
    }
    const copies = cond.duplicate > 0 && this.random() < cond.duplicate ? 2 : 1;
    const now = this.clock.now();
    for (let c = 0; c < copies; c++) {
      let at = now + (c === 0 ? latency : latency + this.draw(cond.latency));
      if (!cond.reorder) at = this.fifo(src, dst, at, now);
      const d = this.spare.pop();
      if (d === undefined) this.clock.schedule(new FrameDelivery(at, this, from, dst, payload));
      else {
        d.at = at;
        d.fn = deliverFrame;
        d.from = from;
        d.to = dst;
        d.payload = payload;
        this.clock.schedule(d);
      }
    }
  }

  /** @internal a frame in flight arrives. */
  arrive(d: FrameDelivery): void {
    const { to, from, payload } = d;
    // The clock is done with it (fired, never cleared: nobody else holds it): reuse it for a later frame.
    d.payload = null;
    this.spare.push(d);
    // Killed, closed or restarted since (a restart is a new endpoint; the old one stays closed): lost.
    if (!to.open || (this.silenced.size > 0 && this.silenced.has(to.address))) {
      this.stats.framesDropped++;
      return;
    }
    this.stats.framesDelivered++;
    const handler = to.transport.endpoint.handler;
    if (!handler || payload === null) return;
    if (payload instanceof Uint8Array) handler.onFrame(payload, from);
    else handler.onEnvelope?.(payload, from);
  }

  /**
   * FIFO per link: a frame never arrives before one sent earlier on the same
   * link. O(1) per frame: each source remembers the latest arrival per
   * destination, and entries already in the past (which cannot delay
   * anything) are pruned whenever the table doubles.
   */
  private fifo(src: Endpoint, dst: Endpoint, at: number, now: number): number {
    const table = src.lastArrival;
    const last = table.get(dst);
    if (last !== undefined && last > at) return last;
    if (last === undefined && table.size >= src.pruneAt) {
      for (const [ep, t] of table) if (t <= now) table.delete(ep);
      src.pruneAt = Math.max(64, 2 * table.size);
    }
    table.set(dst, at);
    return at;
  }

  private touch(ep: Endpoint, peer: Address): void {
    const last = ep.contacts.get(peer);
    const now = this.clock.now();
    // Refreshed within the last second: keep its place (re-ordering on every frame is most of this cost).
    if (last !== undefined && now - last < Math.min(1_000, this.connectionIdleMs / 4)) return;
    ep.contacts.delete(peer);
    ep.contacts.set(peer, this.clock.now());
    if (ep.contacts.size > this.maxConnections) {
      const oldest = ep.contacts.keys().next().value;
      if (oldest !== undefined) ep.contacts.delete(oldest);
    }
  }

  private partitioned(a: Address, b: Address): boolean {
    if (!this.groups) return false;
    return (this.groups.get(a) ?? -1) !== (this.groups.get(b) ?? -1);
  }

  private conditions(from: Address, to: Address): { latency: readonly [number, number]; loss: number; duplicate: number; reorder: boolean } {
    // Usual case: no per-link or per-node settings (no key to build, nothing to allocate).
    if (this.links.size === 0 && this.nodeConditions.size === 0) return this.defaults;
    const link = this.links.get(`${from}\u0000${to}`);
    const a = this.nodeConditions.get(from);
    const b = this.nodeConditions.get(to);
    const pick = <K extends keyof LinkConditions>(k: K): LinkConditions[K] | undefined => link?.[k] ?? b?.[k] ?? a?.[k];
    const latency = pick('latency');
    return {
      latency: latency !== undefined ? toRange(latency) : this.defaults.latency,
      loss: Math.max(pick('loss') ?? 0, this.defaults.loss),
      duplicate: pick('duplicate') ?? this.defaults.duplicate,
      reorder: pick('reorder') ?? this.defaults.reorder,
    };
  }

  private draw(range: readonly [number, number]): number {
    const [min, max] = range;
    return max > min ? min + this.random() * (max - min) : min;
  }
}

function toRange(l: number | readonly [number, number]): readonly [number, number] {
  return typeof l === 'number' ? [l, l] : l;
}
