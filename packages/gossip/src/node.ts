/**
 * The gossip node: SWIM membership with Lifeguard, broadcasts, push-pull,
 * user events, queries and a reliable channel, over any Transport.
 *
 * This file wires the mechanisms together (one file each: state.ts for the
 * membership rules, probe.ts for failure detection, dissemination.ts for
 * sending and gossip rounds, broadcast-queue.ts, push-pull.ts,
 * join-attempt.ts, join-relay.ts, user-events.ts, queries.ts, channel.ts,
 * name-conflicts.ts; its options and events are in node-options.ts) and
 * dispatches each message that passed the boundary for untrusted input
 * (internal/receive.ts: frames decoded, senders checked, messages parsed;
 * whatever is refused is counted in `stats().dropped` and logged once; the
 * node keeps running).
 *
 * Stream evidence: when the transport reports that a member's host refused
 * or reset the connection, nobody is listening there, so we suspect it at
 * once. Whoever hears such a suspicion pings the suspect once; if its host
 * refuses them too, that is an independent confirmation, and Lifeguard's
 * suspicion timer falls to its minimum: a crashed process is declared
 * failed everywhere in about the minimum suspicion time. A slow member never
 * produces refusals, answers its probes late at worst, and refutes.
 */
import { Awareness } from './awareness';
import { plausibleLamport } from './bounds';
import { BroadcastQueue } from './internal/broadcast-queue';
import { ReliableChannels } from './internal/channel';
import { backgroundTimers, systemClock, type Clock, type TimerHandle } from '@rhizome/clock';
import type { Envelope } from './internal/codec';
import { PeerVersions, PROTOCOL_VERSIONS, speakTo } from './internal/versions';
import { Dissemination } from './internal/dissemination';
import type { NodeContext } from './internal/context';
import { TypedEmitter } from './internal/emitter';
import { GossipError } from './errors';
import type { Keyring } from './keyring';
import { silentLogger, type GossipLogger } from './logger';
import { snapshot, type Member } from './member';
import { MessageType, parseTags, type Message, type Tags } from './internal/messages';
import { resolveProfile, retransmitLimit, type GossipProfile } from './options';
import type { Random } from './prng';
import { JoinAttempt } from './internal/join-attempt';
import { JoinRelay } from './internal/join-relay';
import { Prober } from './probe';
import { PushPull } from './internal/push-pull';
import { Queries, type QueryHandle, type QueryOptions, type QueryResponder } from './queries';
import { Membership, type MembershipEvent } from './state';
import { encodedSize } from './internal/size';
import { newStats, type NodeStats } from './stats';
import type { Transport, UnreachableReason as TransportUnreachable } from './transport';
import { UserEvents, type UserEvent } from './user-events';
import { KeyManager, RESERVED_QUERY_PREFIX } from './key-manager';
import { describeRefusals, RefusalReporter } from './internal/refusals';
import { NameConflicts } from './internal/name-conflicts';
import { FrameReceiver } from './internal/receive';
import { checkNodeOptions, type GossipEvents, type GossipNodeOptions, type SendEventOptions } from './node-options';

export type { GossipEvents, GossipNodeOptions, NameConflict, SendEventOptions } from './node-options';

/** leave() also sends its leave straight to every member when there are at most this many. */
const DIRECT_LEAVE_LIMIT = 128;

/** User events carried by each push-pull exchange (anti-entropy for missed events). */
const RECENT_EVENTS_IN_PUSH_PULL = 64;

type NodeState = 'running' | 'left' | 'shutdown';

/** Per node: how `setLifeguard` reaches its private parts (testing only). */
const lifeguardSwitches = new WeakMap<GossipNode, (on: boolean) => void>();

/**
 * @internal (exported by `@rhizome/gossip/testing` only) Switch Lifeguard on
 * or off at run time. For a benchmark that measures false positives with and
 * without it on one converged cluster rather than joining a second one (at
 * N = 10,000 a join is 10⁸ insertions). Suspicions already running keep the
 * setting they started with; switch between windows, not during one.
 */
export function setLifeguard(node: GossipNode, on: boolean): void {
  lifeguardSwitches.get(node)?.(on);
}

export class GossipNode {
  readonly name: string;
  readonly address: string;
  readonly profile: GossipProfile;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly keyring: Keyring | undefined;
  /** Cluster label ('' = none). */
  readonly label: string;
  private readonly refusals: RefusalReporter;
  private readonly logger: GossipLogger;
  private readonly seeds: readonly string[];
  private readonly counters: NodeStats = newStats();
  private readonly awareness: Awareness;
  private readonly emitter: TypedEmitter<GossipEvents>;
  private readonly ctx: NodeContext;
  private readonly membership: Membership;
  private readonly broadcasts: BroadcastQueue;
  private readonly prober: Prober;
  private readonly pushPull: PushPull;
  private readonly joinRelay: JoinRelay;
  private readonly userEvents: UserEvents;
  private readonly queries: Queries;
  private readonly channels: ReliableChannels;
  private readonly dissemination: Dissemination;
  /**
   * Cluster-wide key operations with `serf keys` semantics (key-manager.ts):
   * `keys.list()`, `keys.install(k)`, `keys.use(k)`, `keys.remove(k)`, each
   * answered by every live member. Needs a keyring.
   */
  readonly keys: KeyManager;
  private state: NodeState = 'running';
  private reapTimer: TimerHandle | null = null;
  private joining: JoinAttempt | null = null;
  private readonly conflicts: NameConflicts;
  /** The newest protocol version each peer understands (from its frames): what we speak to it. */
  private readonly peerVersions = new PeerVersions();
  private readonly receive: FrameReceiver;

  constructor(options: GossipNodeOptions) {
    const { name, transport, tags, profile, label, refusalInterval } = checkNodeOptions(options);
    this.profile = profile;
    this.name = name;
    this.address = transport.address;
    this.transport = transport;
    // Every gossip timer (probes, gossip and push-pull rounds, suspicion,
    // retransmits, joins, query and coalescing windows) is protocol upkeep:
    // none keeps the process alive, so an idle node never holds it open.
    this.clock = backgroundTimers(options.clock ?? systemClock);
    this.random = options.random ?? Math.random;
    this.keyring = options.keyring;
    this.label = label;
    this.logger = options.logger ?? silentLogger;
    this.seeds = [...(options.seeds ?? [])];
    this.awareness = new Awareness(this.profile.awarenessMaxMultiplier);
    this.emitter = new TypedEmitter<GossipEvents>((event, err) =>
      this.logger.error({ event, err: String(err) }, 'gossip: an event listener threw; the node carries on'),
    );
    this.conflicts = new NameConflicts({
      name,
      address: this.address,
      clock: this.clock,
      logger: this.logger,
      emit: (conflict) => this.emitter.emit('name-conflict', conflict),
      send: (addr, msgs) => this.dissemination.send(addr, msgs, false),
      failJoin: (err) => this.joining?.fail(err),
    });
    this.refusals = new RefusalReporter(this.clock, refusalInterval, (summary) => {
      this.logger.warn({ code: 'GOSSIP_ERR_FRAMES_REFUSED', peer: summary.peer, total: summary.total }, describeRefusals(summary));
      this.emitter.emit('frames-refused', summary);
    });
    this.ctx = {
      name: this.name,
      address: this.address,
      clock: this.clock,
      random: this.random,
      profile: this.profile,
      logger: this.logger,
      awareness: this.awareness,
      stats: this.counters,
      send: (addr, msgs, piggyback, sharedFrom) => this.dissemination.send(addr, msgs, piggyback ?? false, sharedFrom),
      numMembers: () => this.membership.numLive(),
      running: () => this.state !== 'shutdown',
      gossipSoon: () => this.dissemination.gossipSoon(),
      implausible: (what) => {
        this.counters.dropped.implausible++;
        this.refusals.refused(this.receive.receivingFrom ?? this.address, 'GOSSIP_ERR_IMPLAUSIBLE', `${what}: too far ahead of what this node knows (refused, not adopted)`);
      },
    };
    const disseminationDeps = {
      name: this.name,
      address: this.address,
      profile: this.profile,
      keyring: this.keyring,
      label: this.label,
      transport,
      clock: this.clock,
      random: this.random,
      counters: this.counters,
      logger: this.logger,
      membership: () => this.membership,
      queues: () => [this.broadcasts, this.userEvents.queue, this.queries.queue],
      running: () => this.state !== 'shutdown',
      speakTo: (addr: string) => speakTo(PROTOCOL_VERSIONS, this.peerVersions.get(addr)),
    };
    this.dissemination = new Dissemination(disseminationDeps);
    lifeguardSwitches.set(this, (on) => {
      const profile = resolveProfile(this.profile, { lifeguard: on });
      // Every mechanism reads the profile through these at each use.
      (this as { profile: GossipProfile }).profile = profile;
      (this.ctx as { profile: GossipProfile }).profile = profile;
      disseminationDeps.profile = profile;
    });
    this.broadcasts = new BroadcastQueue(
      () => retransmitLimit(this.profile.retransmitMult, this.membership.numLive()),
      4096,
      () => this.dissemination.gossipSoon(),
    );
    this.membership = new Membership(
      this.ctx,
      {
        emit: (event, member) => this.onMembershipEvent(event, member),
        // onMembershipEvent acts on failed, leave and reap itself; the others only reach listeners.
        listens: (event) => event === 'member-failed' || event === 'member-leave' || event === 'member-reap' || this.emitter.listens(event),
        broadcast: (key, msg, onDone) => this.dissemination.queueBroadcast(key, msg, onDone),
        conflict: (existing, claimedAddr) => this.conflicts.claimed(existing, claimedAddr),
      },
      tags,
    );
    this.prober = new Prober(this.ctx, this.membership);
    this.pushPull = new PushPull(this.ctx, this.membership, {
      clocks: () => this.lamportTimes(),
      recentEvents: () => this.userEvents.recent(RECENT_EVENTS_IN_PUSH_PULL),
      plausibleClocks: (ev, qt, joinAnswer) =>
        plausibleLamport(ev, this.userEvents.clock.time(), joinAnswer) && plausibleLamport(qt, this.queries.clock.time(), joinAnswer),
      witness: (ev, qt) => {
        this.userEvents.clock.catchUp(ev);
        this.queries.clock.catchUp(qt);
      },
      eventDigests: () => this.userEvents.digests(),
      markSeen: (digests, upTo) => this.userEvents.markSeen(digests, upTo),
      joinAnswered: (addr) => this.joining?.answeredBy(addr),
      answeredJoin: (name, addr) => this.joinRelay.answered(name, addr),
    });
    this.joinRelay = new JoinRelay(this.ctx, this.membership, () => this.lamportTimes());
    this.userEvents = new UserEvents(this.ctx, (ev) => this.emitter.emit('user-event', ev));
    this.queries = new Queries(this.ctx, () => this.membership.local.tags);
    this.channels = new ReliableChannels(this.ctx, {
      lookup: (n) => this.membership.get(n),
      deliver: (from, payload) => this.emitter.emit('reliable', { from, payload }),
      unreachable: (member, reason) => this.emitter.emit('unreachable', { member, reason }),
    });
    this.keys = new KeyManager({
      keyring: this.keyring,
      name: this.name,
      liveMembers: () => this.membership.liveNames(),
      query: (name, payload, opts) => this.queries.query(name, payload, opts),
      respond: (name, fn) => this.queries.respond(name, fn),
      changed: (change) => {
        this.logger.info({ operation: change.operation, keys: change.keys.length }, `gossip: keyring changed (${change.operation})`);
        this.emitter.emit('keyring-change', change);
      },
    });
    this.receive = new FrameReceiver({
      address: this.address,
      ctx: this.ctx,
      keyring: this.keyring,
      label: this.label,
      transport,
      counters: this.counters,
      refusals: this.refusals,
      peerVersions: this.peerVersions,
      membership: this.membership,
      conflicts: this.conflicts,
      dispatch: (msg, env) => this.dispatch(msg, env),
    });
    transport.setHandler({
      onFrame: (frame, remote) => this.receive.frame(frame, remote),
      onUnreachable: (to, reason) => this.onUnreachable(to, reason),
      onEnvelope: (env, remote) => this.receive.envelope(env, remote),
    });
    this.prober.start();
    this.pushPull.start();
    this.dissemination.start();
    this.reapTimer = this.clock.setTimeout(() => this.reapTick(), this.reapInterval());
  }

  // ---------------------------------------------------------------------------
  // Public API

  /**
   * Contact the seeds (default: `options.seeds`) and exchange full state
   * with each. Resolves with the number of seeds that answered; rejects with
   * GOSSIP_ERR_JOIN_FAILED if none did within joinTimeout, or
   * GOSSIP_ERR_NAME_CONFLICT if a live member already owns our name.
   * With no seeds (the first node), resolves 0 at once.
   */
  join(seeds: readonly string[] = this.seeds): Promise<number> {
    if (this.state === 'shutdown') return Promise.reject(this.notRunning('join'));
    if (this.state === 'left') {
      this.state = 'running';
      this.membership.rejoinLocal();
    }
    const targets = [...new Set(seeds)].filter((s) => s !== this.address);
    // Announce ourselves to whoever we already know, too.
    this.dissemination.queueBroadcast(this.name, this.membership.localAlive());
    if (targets.length === 0) return Promise.resolve(0);
    this.joining?.fail(new GossipError('GOSSIP_ERR_JOIN_FAILED', 'join superseded by a newer join() call'));
    const attempt = new JoinAttempt(targets, this.clock, this.profile, (seed) => this.pushPull.pushPullTo(seed, true), (ok) => {
      if (this.joining === attempt) this.joining = null;
      if (ok) this.followUpJoin();
    });
    this.joining = attempt;
    attempt.start();
    return attempt.done;
  }

  /**
   * Leave gracefully: gossip our intent (shown as `left`, never `failed`,
   * everywhere) and wait until it was sent out (at most leaveTimeout). The
   * node keeps answering probes until `shutdown()`; `join()` again to return.
   */
  async leave(): Promise<void> {
    if (this.state !== 'running') return;
    const others = this.membership.numLive() - 1;
    const sent = new Promise<void>((resolve) => this.membership.leaveLocal(resolve));
    this.state = 'left';
    if (others <= 0) return;
    // Besides gossip, tell members directly (small clusters): nobody should see our shutdown before our leave.
    if (others <= DIRECT_LEAVE_LIMIT) {
      const local = this.membership.local;
      const msg: Message = { t: MessageType.Dead, node: local.name, inc: local.inc, from: local.name };
      const ms = this.membership;
      for (let i = 0; i < ms.size; i++) {
        const id = ms.order[i] as number;
        if (id !== local.id && ms.isLive(id)) this.dissemination.send(ms.addrOf(id), [msg], false);
      }
    }
    let timer: TimerHandle | null = null;
    const timeout = new Promise<void>((resolve) => {
      timer = this.clock.setTimeout(resolve, this.profile.leaveTimeout);
    });
    await Promise.race([sent, timeout]);
    if (timer) this.clock.clearTimeout(timer);
    // Let the last receivers pass it on for a couple of rounds.
    await new Promise<void>((resolve) => this.clock.setTimeout(resolve, 2 * this.profile.gossipInterval));
  }

  /** Stop everything and close the transport (without telling anyone: use leave() first for that). */
  async shutdown(): Promise<void> {
    if (this.state === 'shutdown') return;
    this.state = 'shutdown';
    this.dissemination.stop();
    if (this.reapTimer) this.clock.clearTimeout(this.reapTimer);
    this.prober.stop();
    this.pushPull.stop();
    this.joinRelay.stop();
    this.membership.shutdown();
    this.userEvents.shutdown();
    this.queries.shutdown();
    this.channels.shutdown();
    this.refusals.stop();
    this.broadcasts.reset();
    this.joining?.fail(this.notRunning('join'));
    await this.transport.close();
  }

  /** Every known member, this node included, tombstones (failed, left) included until reaped. */
  members(): Member[] {
    return this.membership.members();
  }

  /**
   * How many members are alive or suspect, this node included: O(1), no
   * snapshot (a simulator polls it on every node to see a join converge).
   */
  liveMemberCount(): number {
    return this.membership.numLive();
  }

  member(name: string): Member | undefined {
    const m = this.membership.get(name);
    return m ? snapshot(m) : undefined;
  }

  localMember(): Member {
    return snapshot(this.membership.local);
  }

  get running(): boolean {
    return this.state !== 'shutdown';
  }

  on<K extends keyof GossipEvents>(event: K, fn: (arg: GossipEvents[K]) => void): () => void {
    return this.emitter.on(event, fn);
  }

  once<K extends keyof GossipEvents>(event: K, fn: (arg: GossipEvents[K]) => void): () => void {
    return this.emitter.once(event, fn);
  }

  off<K extends keyof GossipEvents>(event: K, fn: (arg: GossipEvents[K]) => void): void {
    this.emitter.off(event, fn);
  }

  /** Replace our tags; every member sees member-update. */
  setTags(tags: Readonly<Record<string, string>>): void {
    this.assertRunning('setTags');
    let parsed: Tags;
    try {
      parsed = parseTags(tags);
    } catch (err) {
      throw new TypeError(`setTags: ${(err as Error).message}`);
    }
    this.membership.setLocalTags(parsed);
  }

  /**
   * Send a user event to every member (this one included), once each.
   * @throws GossipError GOSSIP_ERR_EVENT_TOO_LARGE above userEventSizeLimit.
   */
  sendEvent(name: string, payload?: unknown, options: SendEventOptions = {}): UserEvent {
    this.assertRunning('sendEvent');
    return this.userEvents.send(name, payload, options.coalesce ?? false);
  }

  /** Ask matching members; acks and responses arrive on the handle until its timeout. */
  query(name: string, payload?: unknown, options: QueryOptions = {}): QueryHandle {
    this.assertRunning('query');
    assertNotReserved('query', name);
    return this.queries.query(name, payload, options);
  }

  /** Answer queries called `name` ('*' for any without its own responder); returns unregister. */
  onQuery(name: string, responder: QueryResponder): () => void {
    assertNotReserved('onQuery', name);
    return this.queries.respond(name, responder);
  }

  /**
   * Send `payload` to member `to` reliably and in order. Resolves when acked;
   * rejects with UnreachableError (GOSSIP_ERR_UNREACHABLE) if the member
   * fails, leaves, or never acks after every retransmit.
   */
  sendReliable(to: string, payload: unknown): Promise<void> {
    return this.channels.send(to, payload);
  }

  /**
   * Send `payload` to member `to` once, best effort (memberlist's
   * SendBestEffort): no sequence number, ack or retransmit, so it may be
   * lost, and a layer above that has its own acks (relation links) pays for
   * one reliability layer, not two. Returns false when nothing was sent
   * (not running; unknown, failed or left member). Throws
   * GOSSIP_ERR_MESSAGE_TOO_LARGE for a payload that cannot fit a frame.
   */
  sendBestEffort(to: string, payload: unknown): boolean {
    if (!this.running) return false;
    const m = this.membership.get(to);
    if (!m || m.name === this.name || m.status === 'failed' || m.status === 'left') return false;
    const size = encodedSize(payload ?? null);
    if (size > this.profile.maxFrameSize - 512) {
      throw new GossipError('GOSSIP_ERR_MESSAGE_TOO_LARGE', `best-effort payload of ${size} bytes does not fit in a frame (maxFrameSize ${this.profile.maxFrameSize}); split it`);
    }
    this.ctx.send(m.addr, [{ t: MessageType.Direct, payload: payload ?? null }]);
    return true;
  }

  /** Receive best-effort messages (sendBestEffort); returns unsubscribe. */
  onDirect(handler: (from: string, payload: unknown) => void): () => void {
    return this.emitter.on('direct', ({ from, payload }) => handler(from, payload));
  }

  /** Receive reliable-channel messages (in order, once per message); returns unsubscribe. */
  onReliable(handler: (from: string, payload: unknown) => void): () => void {
    return this.emitter.on('reliable', ({ from, payload }) => handler(from, payload));
  }

  /** A copy of the traffic and drop counters. */
  stats(): NodeStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }

  /** Lifeguard local health score: 0 is healthy; timeouts are scaled by score + 1. */
  healthScore(): number {
    return this.awareness.getHealthScore();
  }

  private reapInterval(): number {
    return Math.min(15_000, Math.max(100, Math.min(this.profile.tombstoneTimeout, this.profile.reapTimeout) / 4));
  }

  private reapTick(): void {
    if (this.state === 'shutdown') return;
    this.reapTimer = this.clock.setTimeout(() => this.reapTick(), this.reapInterval());
    this.membership.reap();
    this.conflicts.expire();
  }

  // ---------------------------------------------------------------------------
  // Receiving: frames pass the boundary checks in internal/receive.ts, then come here.

  private dispatch(msg: Message, env: Envelope): void {
    switch (msg.t) {
      case MessageType.Ping:
        return this.prober.handlePing(msg, env.addr);
      case MessageType.IndirectPing:
        return this.prober.handleIndirectPing(msg, env.addr);
      case MessageType.Ack:
        return this.prober.handleAck(msg);
      case MessageType.Nack:
        return this.prober.handleNack(msg);
      case MessageType.Suspect: {
        const ms = this.membership;
        const target = ms.idOf(msg.node);
        const fresh = target !== undefined && ms.statusOf(target) === 'alive';
        ms.suspectNode(msg);
        // Someone saw its host refuse or reset a connection: check it ourselves once; a refusal is our
        // independent confirmation. (Not for timeout-based suspicion: SWIM's probes cover that, and N pings
        // per suspicion would be wasted on a member that is merely slow.)
        if (fresh && msg.ev && this.profile.streamEvidence && target !== ms.localIdNumber && msg.from !== this.name && ms.isSuspect(target)) {
          this.prober.pingOnce(ms.ref(target));
        }
        return;
      }
      case MessageType.Alive:
        return this.membership.aliveNode(msg);
      case MessageType.Dead:
        return this.membership.deadNode(msg);
      case MessageType.PushPull:
        return this.pushPull.handle(msg, env.from, env.addr);
      case MessageType.UserEvent:
        this.userEvents.handle(msg);
        return;
      case MessageType.Query:
        this.queries.handle(msg);
        return;
      case MessageType.QueryResponse:
        return this.queries.handleResponse(msg);
      case MessageType.Reliable:
        return this.channels.handleData(msg, env.from, env.addr);
      case MessageType.ReliableAck:
        return this.channels.handleAck(msg, env.from);
      case MessageType.Conflict:
        return this.conflicts.noticed(msg, env.from);
      case MessageType.Heard:
        return this.membership.heardWitness(msg);
      case MessageType.Direct:
        // Only from a member we know by that name: a frame's claimed name is all we have (the keyring authenticates it).
        if (this.membership.get(env.from) === undefined || env.from === this.name) return;
        this.emitter.emit('direct', { from: env.from, payload: msg.payload });
        return;
    }
  }

  private onUnreachable(to: string, reason: TransportUnreachable): void {
    if (this.state === 'shutdown') return;
    if (reason !== 'timeout') this.joining?.refusedBy(to);
    if (reason === 'timeout' || !this.profile.streamEvidence) return;
    const m = this.membership.byAddress(to);
    if (!m || m.id === this.membership.local.id || (m.status !== 'alive' && m.status !== 'suspect')) return;
    // Nobody listens there: stronger evidence than a timeout. Suspect at once (or confirm).
    this.membership.suspectNode({ t: MessageType.Suspect, node: m.name, inc: m.inc, from: this.name, ev: true });
  }

  // ---------------------------------------------------------------------------
  // Join follow-up and name conflicts

  /** News that raced our join (others joining at the same moment) is picked up by two early syncs. */
  private followUpJoin(): void {
    const f = this.profile.joinFollowUp;
    if (f <= 0) return;
    for (const delay of [f, 4 * f]) {
      this.clock.setTimeout(() => {
        if (this.state === 'running') this.pushPull.syncRandom();
      }, delay * (0.5 + this.random()));
    }
  }

  private onMembershipEvent(event: MembershipEvent, member: Member): void {
    if (event === 'member-failed') this.channels.peerDown(member.name, 'failed');
    else if (event === 'member-leave') this.channels.peerDown(member.name, 'left');
    else if (event === 'member-reap') this.channels.forget(member.name);
    this.emitter.emit(event, member);
  }

  /** Our user-event and query Lamport times, carried by every push-pull. */
  private lamportTimes(): { ev: number; qt: number } {
    return { ev: this.userEvents.clock.time(), qt: this.queries.clock.time() };
  }

  private assertRunning(op: string): void {
    if (this.state === 'shutdown') throw this.notRunning(op);
  }

  private notRunning(op: string): GossipError {
    return new GossipError('GOSSIP_ERR_NOT_RUNNING', `${op}: this node was shut down; create a new node`);
  }
}

function assertNotReserved(op: string, name: string): void {
  if (typeof name === 'string' && name.startsWith(RESERVED_QUERY_PREFIX)) {
    throw new GossipError('GOSSIP_ERR_RESERVED_NAME', `${op}: query names starting with "${RESERVED_QUERY_PREFIX}" are the node's own; pick another name`);
  }
}

/** Create and start a node (it listens at once; call `join` to meet the cluster). */
export function createNode(options: GossipNodeOptions): GossipNode {
  return new GossipNode(options);
}
