/**
 * How messages leave a node: direct sends (frames packed and encoded by
 * codec.ts), and gossip rounds that spread the queued broadcasts.
 *
 * Gossip: every gossipInterval, queued broadcasts (membership news first,
 * then user events and queries) go to `gossipNodes` random members (live
 * ones, plus recently failed or left ones so they can learn it and refute);
 * they also ride on every ping and ack. Fresh news triggers an extra round
 * within milliseconds (at most one per quarter interval), so a broadcast
 * crosses the cluster in network hops, not gossip intervals. The periodic
 * round runs only while something is queued: an idle node does not wake up
 * every gossipInterval for nothing (at N = 50 that was 250 wake-ups a
 * second on the host).
 *
 * Connection cost: over a stream transport (WebSocket), the first frame to a
 * member costs a handshake (~1 ms of CPU on each side), unlike memberlist's
 * UDP. When 50 members join at once, uniformly random gossip targets would
 * open a connection to nearly every member within a second, and the CPU
 * spent on handshakes is what delays convergence. So, when the transport
 * can tell (`connected`), a gossip round picks its targets among members it
 * already has a connection with, plus one uniformly random member (which
 * may need a new connection) at most once per gossipInterval, or whenever
 * no connected member is eligible. Dissemination stays epidemic (every
 * joiner is connected to its seed, and the random slot keeps adding
 * edges), and in steady state, when probing has connected everyone, the
 * choice is uniform again. The simulated network has no such cost and keeps
 * plain uniform targets.
 */
import type { BroadcastQueue } from './broadcast-queue';
import type { Clock, TimerHandle } from '@rhizome/clock';
import { encodeFrames } from './codec';
import type { Keyring } from '../keyring';
import type { GossipLogger } from '../logger';
import { MessageType, type Message } from './messages';
import type { GossipProfile } from '../options';
import { sample, type Random } from '../prng';
import type { Membership } from '../state';
import type { NodeStats } from '../stats';
import type { Transport } from '../transport';

/** Fresh news waits this long (ms) before an eager gossip round, so a burst goes out in one frame. */
const EAGER_GOSSIP_DELAY = 2;

export interface DisseminationDeps {
  readonly name: string;
  readonly address: string;
  readonly profile: GossipProfile;
  readonly keyring: Keyring | undefined;
  /** Cluster label ('' = none), written into every frame. */
  readonly label: string;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly random: Random;
  readonly counters: NodeStats;
  readonly logger: GossipLogger;
  readonly membership: () => Membership;
  /** Broadcast queues in priority order: membership news, user events, queries. */
  readonly queues: () => readonly BroadcastQueue[];
  /** False once the node is shut down: nothing is sent any more. */
  readonly running: () => boolean;
  /** The protocol version to speak to a peer (versions.ts). */
  readonly speakTo: (addr: string) => number;
}

export class Dissemination {
  private gossipTimer: TimerHandle | null = null;
  private eagerTimer: TimerHandle | null = null;
  private lastGossip = -Infinity;
  /** When a gossip round last picked a target that needed a new connection. */
  private lastNewGossipLink = -Infinity;
  /** Encodings of queued broadcasts, by message object (see send). */
  private readonly encoded = new WeakMap<object, Uint8Array>();
  /** The node's queues, asked for once (the node builds some of them after this). */
  private queueList: readonly BroadcastQueue[] | null = null;

  constructor(private readonly d: DisseminationDeps) {}

  /** Arms the first round at a random offset, so nodes started together do not gossip in lockstep. */
  start(): void {
    this.gossipTimer ??= this.d.clock.setTimeout(() => this.tick(), this.d.random() * this.d.profile.gossipInterval);
  }

  stop(): void {
    if (this.gossipTimer) this.d.clock.clearTimeout(this.gossipTimer);
    if (this.eagerTimer) this.d.clock.clearTimeout(this.eagerTimer);
    this.gossipTimer = this.eagerTimer = null;
  }

  /**
   * Send `msgs` to `addr` now; with `piggyback`, queued broadcasts ride
   * along up to gossipBudget. `msgs` from `broadcastFrom` on are queued
   * broadcasts: never mutated once queued and sent many times, so their
   * encodings are cached (codec.ts).
   */
  send(addr: string, msgs: unknown[], piggyback: boolean, broadcastFrom = msgs.length): void {
    if (!this.d.running()) return;
    let all: unknown[] = msgs;
    if (piggyback) {
      const n = msgs.length;
      // Taken straight into a copy of `msgs` (the caller's array is left alone); the copy goes if nothing rode along.
      const withExtra = this.takeBroadcasts(this.d.profile.gossipBudget, msgs.slice());
      if (withExtra.length > n) all = withExtra;
    }
    if (all.length === 0) return;
    const direct = this.d.transport.sendEnvelope;
    if (direct !== undefined) {
      // Trusted in-process network (simulation): the messages themselves, never encoded.
      this.d.counters.messagesOut += all.length;
      this.d.counters.framesOut++;
      direct.call(this.d.transport, addr, { from: this.d.name, addr: this.d.address, msgs: all });
      return;
    }
    let frames: Uint8Array[];
    try {
      frames = encodeFrames(
        { from: this.d.name, addr: this.d.address, msgs: all },
        {
          maxFrameSize: this.d.profile.maxFrameSize,
          keyring: this.d.keyring,
          label: this.d.label,
          cache: this.encoded,
          cacheFrom: broadcastFrom,
          speak: this.d.speakTo(addr),
        },
      );
    } catch (err) {
      this.d.counters.dropped.unencodable++;
      this.d.logger.error({ to: addr, err: String(err) }, 'gossip: could not encode outgoing messages; dropped them');
      return;
    }
    this.d.counters.messagesOut += all.length;
    for (const f of frames) {
      this.d.counters.framesOut++;
      this.d.counters.bytesOut += f.byteLength;
      this.d.transport.send(addr, f);
    }
  }

  /** Queue membership news about `key` (a member name) for gossip; `onDone` when it was sent out. */
  queueBroadcast(key: string, msg: Message, onDone?: () => void): void {
    if (!this.d.running()) {
      onDone?.();
      return;
    }
    const size = estimateSize(msg);
    this.queues()[0]!.queue(onDone ? { key, msg, size, onDone } : { key, msg, size });
  }

  /**
   * Eager gossip: fresh news goes out within a few milliseconds instead of
   * waiting up to a whole gossip interval at every hop. Rounds stay at least
   * gossipInterval / 4 apart, and each broadcast still counts against its
   * retransmit limit, so the total traffic is unchanged; only latency drops.
   */
  gossipSoon(): void {
    if (!this.d.running()) return;
    const p = this.d.profile;
    if (this.gossipTimer === null) this.gossipTimer = this.d.clock.setTimeout(() => this.tick(), p.gossipInterval);
    if (this.eagerTimer !== null) return;
    const wait = Math.max(EAGER_GOSSIP_DELAY, this.lastGossip + p.gossipInterval / 4 - this.d.clock.now());
    this.eagerTimer = this.d.clock.setTimeout(() => {
      this.eagerTimer = null;
      if (this.d.running()) this.round();
    }, wait);
  }

  private tick(): void {
    this.gossipTimer = null;
    if (!this.d.running()) return;
    this.round();
    if (this.anythingQueued()) this.gossipTimer = this.d.clock.setTimeout(() => this.tick(), this.d.profile.gossipInterval);
  }

  private queues(): readonly BroadcastQueue[] {
    this.queueList ??= this.d.queues();
    return this.queueList;
  }

  private anythingQueued(): boolean {
    for (const q of this.queues()) if (q.length > 0) return true;
    return false;
  }

  /** Up to `budget` bytes of queued broadcasts, taken from the queues in priority order, appended to `out`. */
  private takeBroadcasts(budget: number, out: unknown[] = []): unknown[] {
    let left = budget;
    for (const q of this.queues()) {
      if (left <= 64) break;
      if (q.length === 0) continue;
      q.take(left, out);
      left -= q.lastTakenBytes;
    }
    return out;
  }

  private round(): void {
    const now = this.d.clock.now();
    this.lastGossip = now;
    if (!this.anythingQueued()) return;
    const ms = this.d.membership();
    const local = ms.localIdNumber;
    const deadTime = this.d.profile.gossipToTheDeadTime;
    const eligible = (id: number): boolean => {
      if (id === local) return false;
      if (ms.isLive(id)) return true;
      return now - ms.changedAt(id) < deadTime;
    };
    const k = this.d.profile.gossipNodes;
    const transport = this.d.transport;
    let targets: number[];
    if (transport.connected === undefined) {
      targets = sample(ms.order, k, this.d.random, eligible, ms.size);
    } else {
      // See the header: connected members first, plus one random member at most once per gossipInterval.
      targets = sample(ms.order, k, this.d.random, (id) => eligible(id) && transport.connected!(ms.addrOf(id)), ms.size);
      if (targets.length === 0 || now - this.lastNewGossipLink >= this.d.profile.gossipInterval) {
        const extra = sample(ms.order, 1, this.d.random, (id) => eligible(id) && !targets.includes(id), ms.size)[0];
        if (extra !== undefined) {
          if (!transport.connected(ms.addrOf(extra))) this.lastNewGossipLink = now;
          if (targets.length >= k) targets[k - 1] = extra;
          else targets.push(extra);
        }
      }
    }
    for (const t of targets) {
      const msgs = this.takeBroadcasts(this.d.profile.gossipBudget);
      if (msgs.length === 0) break;
      this.send(ms.addrOf(t), msgs, false, 0);
    }
  }
}

function estimateSize(msg: Message): number {
  switch (msg.t) {
    case MessageType.Alive: {
      let n = 40 + msg.node.length + msg.addr.length;
      for (const k in msg.tags) n += k.length + (msg.tags[k]?.length ?? 0) + 4;
      return n;
    }
    case MessageType.Suspect:
    case MessageType.Dead:
      return 32 + msg.node.length + msg.from.length;
    default:
      return 64;
  }
}
