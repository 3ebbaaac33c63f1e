/**
 * Protocol timing and limits. A profile is a complete, frozen set of values;
 * a node takes `profile` (a base, default LAN) plus any overrides, and
 * `resolveProfile` validates the result once at construction, rejecting
 * contradictions with a TypeError that says what to change.
 *
 * All durations are milliseconds.
 */
export interface GossipProfile {
  /** How often a node gossips queued broadcasts to `gossipNodes` random members. */
  readonly gossipInterval: number;
  /** Members picked at random each gossip round. */
  readonly gossipNodes: number;
  /** Keep gossiping to a failed/left member this long, so it can learn it was declared dead and refute. */
  readonly gossipToTheDeadTime: number;
  /** One member is probed per interval (scaled by the local health multiplier). */
  readonly probeInterval: number;
  /** How long a direct ping waits for an ack before asking others to probe indirectly. */
  readonly probeTimeout: number;
  /** Members asked to probe on our behalf when a direct ping times out. */
  readonly indirectChecks: number;
  /** Suspicion minimum = suspicionMult × max(1, log10 N) × probeInterval. */
  readonly suspicionMult: number;
  /** Suspicion starts at suspicionMaxTimeoutMult × minimum and falls as confirmations arrive. */
  readonly suspicionMaxTimeoutMult: number;
  /** A broadcast is sent up to retransmitMult × ceil(log10(N + 1)) times. */
  readonly retransmitMult: number;
  /** Full state exchange with one random member; scaled up above 32 members. 0 disables periodic push-pull. */
  readonly pushPullInterval: number;
  /** Lifeguard local health: timeouts are scaled by up to this factor when we look unhealthy ourselves. */
  readonly awarenessMaxMultiplier: number;
  /** Lifeguard on (local health, dynamic suspicion, nacks) or plain SWIM (fixed suspicion timeout). */
  readonly lifeguard: boolean;
  /** Suspect a member at once when the transport reports `refused`/`reset` (no process listening there). */
  readonly streamEvidence: boolean;
  /**
   * With stream evidence from 2 independent accusers (1 when N <= 3), the
   * suspicion ends after this long instead of the Lifeguard timeout: a live
   * process, however slow, never refuses connections, so only the dead are
   * cut short; the suspect still gets this long to refute a wrong report.
   */
  readonly evidenceSuspicionTimeout: number;
  /** A left member's tombstone is reaped (member-reap) after this long. */
  readonly tombstoneTimeout: number;
  /** A failed member is reaped after this long (Serf's reconnect timeout). */
  readonly reapTimeout: number;
  /** `join` gives up (GOSSIP_ERR_JOIN_FAILED) if no seed answered within this long. */
  readonly joinTimeout: number;
  /** `leave` waits at most this long for its intent to be gossiped before returning. */
  readonly leaveTimeout: number;
  /** Largest frame sent or accepted, bytes. */
  readonly maxFrameSize: number;
  /** Bytes of queued broadcasts carried per gossip message or piggybacked on a ping/ack (memberlist: one UDP packet). */
  readonly gossipBudget: number;
  /** A seed relays members that join through it to its other recent joiners (join-relay.ts), so a mass join converges at once. */
  readonly joinRelay: boolean;
  /** After a join, sync full state with a random member again after this long (and 4× this), to catch news that raced the join. 0 disables. */
  readonly joinFollowUp: number;
  /** Encoded user event (name + payload) limit, bytes (Serf: 512). */
  readonly userEventSizeLimit: number;
  /** Recent user events remembered for dedupe, by Lamport time (Serf: 512). */
  readonly eventBufferSize: number;
  /** Coalesced user events are delivered once per name after this quiet period. */
  readonly eventCoalescePeriod: number;
  /** Encoded query limit, bytes (Serf: 1024). */
  readonly querySizeLimit: number;
  /** Encoded query response limit, bytes (Serf: 1024). */
  readonly queryResponseSizeLimit: number;
  /** Default query timeout = gossipInterval × queryTimeoutMult × ceil(log10(N + 1)) (Serf: 16). */
  readonly queryTimeoutMult: number;
  /** Recent queries remembered for dedupe, by Lamport time (Serf: 512). */
  readonly queryBufferSize: number;
  /** Reliable channel: resend unacked messages after this long. */
  readonly reliableRetransmitInterval: number;
  /** Reliable channel: report the peer unreachable after this many resends without progress. */
  readonly reliableMaxRetransmits: number;
  /** Reliable channel: unacked messages in flight per peer; further sends wait locally. */
  readonly reliableWindow: number;
}

/** hashicorp/memberlist DefaultLANConfig (and Serf's defaults for events and queries). */
export const DEFAULT_LAN_PROFILE: GossipProfile = Object.freeze({
  gossipInterval: 200, // memberlist LAN: 200 ms
  gossipNodes: 3, // memberlist LAN: 3
  gossipToTheDeadTime: 30_000, // memberlist LAN: 30 s
  probeInterval: 1_000, // memberlist LAN: 1 s
  probeTimeout: 500, // memberlist LAN: 500 ms (a LAN round trip is far below this)
  indirectChecks: 3, // memberlist LAN: 3
  suspicionMult: 4, // memberlist LAN: 4
  suspicionMaxTimeoutMult: 6, // memberlist LAN: 6
  retransmitMult: 4, // memberlist LAN: 4
  pushPullInterval: 30_000, // memberlist LAN: 30 s
  awarenessMaxMultiplier: 8, // memberlist LAN: 8
  lifeguard: true, // memberlist always runs Lifeguard
  streamEvidence: true, // our addition; a UDP transport would never report refusals
  evidenceSuspicionTimeout: 500, // our addition: a probe timeout's worth for a wrong report to be refuted
  tombstoneTimeout: 24 * 3_600_000, // Serf TombstoneTimeout: 24 h
  reapTimeout: 24 * 3_600_000, // Serf ReconnectTimeout: 24 h
  joinTimeout: 10_000, // memberlist TCPTimeout: 10 s
  leaveTimeout: 5_000, // Serf BroadcastTimeout: 5 s
  maxFrameSize: 64 * 1024, // WebSocket has no MTU; 64 KiB bounds memory per frame
  gossipBudget: 8 * 1024, // memberlist fits one 1,400-byte UDP packet; a WebSocket frame can carry ~6× that cheaply
  joinRelay: true, // our addition: see join-relay.ts
  joinFollowUp: 500, // our addition: mass joins converge without waiting a whole push-pull interval
  userEventSizeLimit: 512, // Serf UserEventSizeLimit: 512 B
  eventBufferSize: 512, // Serf EventBuffer: 512
  eventCoalescePeriod: 200, // one gossip interval
  querySizeLimit: 1024, // Serf QuerySizeLimit: 1 KiB
  queryResponseSizeLimit: 1024, // Serf QueryResponseSizeLimit: 1 KiB
  queryTimeoutMult: 16, // Serf QueryTimeoutMult: 16
  queryBufferSize: 512, // Serf QueryBuffer: 512
  reliableRetransmitInterval: 500, // one probe timeout
  reliableMaxRetransmits: 20, // ~10 s without any ack
  reliableWindow: 256,
});

/**
 * Loopback (our `local`; memberlist's DefaultLocalConfig is slower: probe
 * 1 s with a 200 ms timeout, gossip 100 ms, 1 indirect check, retransmit
 * multiplier 2). Round trips are tens of microseconds, so every timer can be much
 * shorter than on a LAN without false positives, and a crashed process is
 * declared failed cluster-wide in about a second (stream evidence plus the
 * shorter suspicion minimum: 3 × max(1, log10 N) × 200 ms, e.g. 0.6 s at
 * N ≤ 10 and 0.78 s at N = 20). A slow member still has up to 6× that to
 * refute while unconfirmed.
 */
export const LOCAL_PROFILE: GossipProfile = Object.freeze({
  ...DEFAULT_LAN_PROFILE,
  gossipInterval: 50, // 4× LAN: broadcasts reach everyone in well under a second
  probeInterval: 200, // 5× LAN
  probeTimeout: 100, // 5× LAN; loopback RTT is ~0.1 ms, event-loop stalls are the real risk
  suspicionMult: 3, // min suspicion 0.6 s (N ≤ 10); k = 1 confirmation needed to reach it
  pushPullInterval: 5_000, // full syncs are cheap on loopback; heals partitions fast
  gossipToTheDeadTime: 5_000,
  joinTimeout: 3_000,
  leaveTimeout: 2_000,
  eventCoalescePeriod: 50,
  joinFollowUp: 250,
  evidenceSuspicionTimeout: 200, // two probe timeouts on loopback
  reliableRetransmitInterval: 100,
  reliableMaxRetransmits: 50, // ~5 s without any ack
});

/**
 * hashicorp/memberlist DefaultWANConfig: the LAN values with longer timers,
 * for members that talk across the internet (round trips of tens to
 * hundreds of ms, occasional loss).
 */
export const DEFAULT_WAN_PROFILE: GossipProfile = Object.freeze({
  ...DEFAULT_LAN_PROFILE,
  gossipInterval: 500, // memberlist WAN: 500 ms (less often, to one more member)
  gossipNodes: 4, // memberlist WAN: 4
  gossipToTheDeadTime: 60_000, // memberlist WAN: 60 s
  probeInterval: 5_000, // memberlist WAN: 5 s
  probeTimeout: 3_000, // memberlist WAN: 3 s
  suspicionMult: 6, // memberlist WAN: 6
  pushPullInterval: 60_000, // memberlist WAN: 60 s
  joinTimeout: 30_000, // memberlist WAN TCPTimeout: 30 s
  evidenceSuspicionTimeout: 3_000, // one probe timeout for a wrong report to be refuted
  eventCoalescePeriod: 500, // one gossip interval
  joinFollowUp: 2_000, // a few WAN round trips after the join
  reliableRetransmitInterval: 3_000, // one probe timeout
  reliableMaxRetransmits: 20, // ~60 s without any ack
});

/** The profiles by the names the agent's `--profile` takes. */
export type ProfileName = 'local' | 'lan' | 'wan';

/**
 * `local` is LOCAL_PROFILE (loopback; faster than memberlist's
 * DefaultLocalConfig, see above), `lan` memberlist's DefaultLANConfig,
 * `wan` its DefaultWANConfig.
 */
export const PROFILES: Readonly<Record<ProfileName, GossipProfile>> = Object.freeze({
  local: LOCAL_PROFILE,
  lan: DEFAULT_LAN_PROFILE,
  wan: DEFAULT_WAN_PROFILE,
});

/** The profile called `name`; a TypeError listing the names for anything else. */
export function profileByName(name: string): GossipProfile {
  if (Object.prototype.hasOwnProperty.call(PROFILES, name)) return PROFILES[name as ProfileName];
  throw new TypeError(`gossip options: unknown profile ${JSON.stringify(name)}; use one of ${Object.keys(PROFILES).join(', ')}`);
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new TypeError(`gossip options: ${message}`);
}

const positive = (p: GossipProfile, k: keyof GossipProfile): void => {
  const v = p[k];
  check(typeof v === 'number' && Number.isFinite(v) && v > 0, `${k} must be a positive finite number, got ${String(v)}`);
};
const integerAtLeast = (p: GossipProfile, k: keyof GossipProfile, min: number): void => {
  const v = p[k];
  check(typeof v === 'number' && Number.isInteger(v) && v >= min, `${k} must be an integer >= ${min}, got ${String(v)}`);
};

/** Merge overrides over a base profile and validate the result. Throws TypeError on bad or contradictory values. */
export function resolveProfile(base: GossipProfile = DEFAULT_LAN_PROFILE, overrides: Partial<GossipProfile> = {}): GossipProfile {
  const p: GossipProfile = { ...base, ...overrides };
  for (const k of Object.keys(overrides)) {
    check(k in DEFAULT_LAN_PROFILE, `unknown option "${k}"`);
  }
  for (const k of [
    'gossipInterval', 'probeInterval', 'probeTimeout', 'gossipToTheDeadTime', 'tombstoneTimeout', 'reapTimeout',
    'joinTimeout', 'leaveTimeout', 'eventCoalescePeriod', 'reliableRetransmitInterval', 'evidenceSuspicionTimeout',
  ] as const) positive(p, k);
  check(Number.isFinite(p.pushPullInterval) && p.pushPullInterval >= 0, `pushPullInterval must be >= 0 (0 disables), got ${p.pushPullInterval}`);
  for (const [k, min] of [
    ['gossipNodes', 1], ['indirectChecks', 0], ['suspicionMult', 1], ['suspicionMaxTimeoutMult', 1],
    ['retransmitMult', 1], ['awarenessMaxMultiplier', 1], ['maxFrameSize', 1024], ['gossipBudget', 256],
    ['userEventSizeLimit', 1], ['eventBufferSize', 1], ['querySizeLimit', 1], ['queryResponseSizeLimit', 1],
    ['queryTimeoutMult', 1], ['queryBufferSize', 1], ['reliableMaxRetransmits', 1], ['reliableWindow', 1],
  ] as const) integerAtLeast(p, k, min);
  check(Number.isFinite(p.joinFollowUp) && p.joinFollowUp >= 0, `joinFollowUp must be >= 0 (0 disables), got ${p.joinFollowUp}`);
  check(p.gossipBudget <= p.maxFrameSize - 512, `gossipBudget (${p.gossipBudget}) must leave room in maxFrameSize (${p.maxFrameSize}): at most maxFrameSize - 512`);
  check(typeof p.lifeguard === 'boolean', 'lifeguard must be a boolean');
  check(typeof p.streamEvidence === 'boolean', 'streamEvidence must be a boolean');
  check(typeof p.joinRelay === 'boolean', 'joinRelay must be a boolean');
  check(
    p.probeTimeout < p.probeInterval,
    `probeTimeout (${p.probeTimeout}) must be shorter than probeInterval (${p.probeInterval}): a probe must finish before the next starts`,
  );
  check(
    p.userEventSizeLimit < p.maxFrameSize && p.querySizeLimit < p.maxFrameSize && p.queryResponseSizeLimit < p.maxFrameSize,
    `userEventSizeLimit, querySizeLimit and queryResponseSizeLimit must be below maxFrameSize (${p.maxFrameSize})`,
  );
  check(
    p.pushPullInterval === 0 || p.pushPullInterval >= p.gossipInterval,
    `pushPullInterval (${p.pushPullInterval}) must be 0 or at least gossipInterval (${p.gossipInterval})`,
  );
  return Object.freeze(p);
}

/** Retransmit limit for a broadcast: retransmitMult × ceil(log10(n + 1)). */
export function retransmitLimit(retransmitMult: number, n: number): number {
  return retransmitMult * Math.ceil(Math.log10(n + 1));
}

/** memberlist suspicionTimeout: suspicionMult × max(1, log10(max(1, n))) × interval. */
export function suspicionTimeout(suspicionMult: number, n: number, interval: number): number {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, n)));
  return Math.floor(suspicionMult * nodeScale * interval);
}

/** memberlist pushPullScale: no scaling up to 32 members, then one more interval per doubling. */
export function pushPullScale(interval: number, n: number): number {
  const threshold = 32;
  if (n <= threshold) return interval;
  const multiplier = Math.ceil(Math.log2(n) - Math.log2(threshold)) + 1;
  return multiplier * interval;
}

/** Serf's default query timeout: gossipInterval × queryTimeoutMult × ceil(log10(n + 1)). */
export function defaultQueryTimeout(p: GossipProfile, n: number): number {
  return p.gossipInterval * p.queryTimeoutMult * Math.max(1, Math.ceil(Math.log10(n + 1)));
}
