/**
 * Simulation figures on the protocol's own SimNetwork (virtual time, seeded),
 * with the LAN profile (memberlist's defaults) and 1–5 ms links:
 *
 *   join_rounds          every node joins node 0 at once; gossip intervals until
 *                        every node knows all N alive.
 *   event_rounds         a user event from one node; gossip intervals until all
 *                        N delivered it (should grow like log N).
 *   msgs_per_member_s    messages (and frames) sent per member per second in a
 *   frames_per_member_s  converged, idle cluster (should stay flat in N).
 *   fp_rate_lifeguard_off  10% of members (at most slowedCount(N)) slowed (each frame in and out +SLOW_MS,
 *   fp_rate_lifeguard_on   a member stalled for seconds); fraction of the
 *                        healthy members declared failed by anyone during the
 *                        window (all are alive). Both windows run on the one
 *                        cluster, after the event: Lifeguard on (the profile's
 *                        default) first; then the slowed members recover, the
 *                        cluster converges again, Lifeguard is switched off on
 *                        every node (setLifeguard), and plain SWIM meets the
 *                        next slowedCount(N) members, slowed the same way. (Until
 *                        December 2026 plain SWIM had a second cluster of its
 *                        own: at N = 10,000 its join and first push-pull wave
 *                        alone were a quarter of the section's CPU.)
 *   slowed_failed_...    the same for the slowed members themselves.
 *   join_cpu_s           CPU to build the first cluster and join it (N² work: everyone learns everyone).
 *   heap_per_pair_b      heap (typed-array buffers included) after a full GC right after that
 *                        join, per node-member pair (N²): 4 GB at N = 10,000 allows ~40 B.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createNode, DEFAULT_LAN_PROFILE } from '../../packages/gossip/src/index';
import { setLifeguard, SimNetwork } from '../../packages/gossip/src/testing';
import type { GossipNode } from '../../packages/gossip/src/index';

export interface SimResult {
  n: number;
  join_rounds: number | null;
  event_rounds: number | null;
  msgs_per_member_s: number;
  frames_per_member_s: number;
  /** Fraction of the healthy members (90%) declared failed by anyone. */
  fp_rate_lifeguard_off: number | null;
  fp_rate_lifeguard_on: number | null;
  /** Fraction of the slowed members (10%, alive but stalled) declared failed by anyone. */
  slowed_failed_lifeguard_off: number | null;
  slowed_failed_lifeguard_on: number | null;
  wall_s: number;
  /** CPU seconds (user + system) this measurement took in this process. */
  cpu_s: number;
  /** Peak resident memory of the process so far, MB (includes earlier sizes of the same run). */
  rss_peak_mb: number;
  /** CPU seconds for building N nodes and the join until all know all (the first cluster). */
  join_cpu_s: number;
  /** JS heap in use after a full GC right after the join, divided by N²: what decides the largest N that fits. */
  heap_per_pair_b: number;
  /** Members slowed in the false-positive windows (slowedCount). */
  slowed: number;
}

/**
 * Heap in use after a full collection (the bench has no --expose-gc; V8
 * lends one), typed-array buffers included: the member tables live there.
 */
function heapAfterGc(): number {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

interface Sim {
  net: SimNetwork;
  nodes: GossipNode[];
  failedNames: Set<string>;
  failedEvents: number;
}

const profile = DEFAULT_LAN_PROFILE;
/**
 * How much later each frame to or from a slowed member arrives: a process
 * stalled for seconds (CPU starvation, GC, swap), beyond SWIM's fixed
 * suspicion timeout at small N, which is what Lifeguard is for.
 */
export const SLOW_MS = 2_500;
/**
 * Slowed members: 10 % of N, at most MAX_SLOWED, and at most
 * MAX_SLOWED_LOAD / N. Every member re-gossips a "heard" witness per
 * suspect per probe interval (Lifeguard), so the window's traffic grows
 * like N × slowed × log N until every member's gossip budget is full of
 * witnesses: with 10 % slowed it is cubic in N, and N = 3,000 alone would
 * take hours of simulated CPU. Bounding N × slowed keeps the window's cost
 * about linear in N: 100 slowed up to N = 1,000, 33 at 3,000, 10 at
 * 10,000 (with 20 the Lifeguard window alone took over 6 minutes of CPU
 * there). The figures stay rates over the healthy and the slowed members.
 */
export const MAX_SLOWED = 100;
export const MAX_SLOWED_LOAD = 100_000;

export function slowedCount(n: number): number {
  return Math.max(1, Math.min(MAX_SLOWED, Math.round(n / 10), Math.floor(MAX_SLOWED_LOAD / n)));
}

function build(n: number, seed: number): Sim {
  // Trusted: messages travel as shared objects, never encoded (the codec is measured by the real-process section).
  // No process is killed here: no connection table to keep for reset-on-kill (two map updates per frame).
  const net = new SimNetwork({ seed, latency: [1, 5], trusted: true, connectionIdleMs: 0 });
  const sim: Sim = { net, nodes: [], failedNames: new Set(), failedEvents: 0 };
  for (let i = 0; i < n; i++) {
    const node = createNode({
      name: `n${i}`,
      transport: net.createTransport(`sim://n${i}`),
      clock: net.clock,
      random: net.forkRandom(),
      profile,
    });
    // Convergence is read from each node's live count (allKnowAll), not counted from member-join
    // events: no listener, so no snapshot per insertion (10⁸ of them in a join at N = 10,000).
    node.on('member-failed', (m) => {
      sim.failedEvents++;
      sim.failedNames.add(m.name);
    });
    sim.nodes.push(node);
  }
  return sim;
}

/** Whether every node knows every member alive (or suspect), itself included: one O(1) read per node. */
export function allKnowAll(nodes: readonly GossipNode[]): boolean {
  const n = nodes.length;
  for (const node of nodes) if (node.liveMemberCount() < n) return false;
  return true;
}

async function converge(sim: Sim, maxMs: number): Promise<number | null> {
  const clock = sim.net.clock;
  const t0 = clock.now();
  const seed = sim.nodes[0]!;
  for (const node of sim.nodes.slice(1)) node.join([seed.address]).catch(() => {});
  const ok = await clock.runUntil(() => allKnowAll(sim.nodes), maxMs, profile.gossipInterval / 4);
  return ok ? (clock.now() - t0) / profile.gossipInterval : null;
}

async function shutdown(sim: Sim): Promise<void> {
  await Promise.all(sim.nodes.map((x) => x.shutdown()));
}

type FpResult = { healthy: number; slowed: number } | null;

/**
 * Slow `slowedCount(n)` members (the `first`-th from the end on) for a
 * window, then restore them; what fraction of the healthy and of the slowed
 * were declared failed.
 */
async function fpWindow(s: Sim, lifeguard: boolean, first: number, log: (m: string) => void): Promise<FpResult> {
  const n = s.nodes.length;
  const slowed = slowedCount(n);
  const names = Array.from({ length: slowed }, (_, i) => `n${n - 1 - first - i}`);
  await s.net.clock.advance(2_000);
  s.failedNames.clear();
  s.failedEvents = 0;
  for (const name of names) s.net.slow(`sim://${name}`, SLOW_MS);
  const windowMs = n >= 1000 ? 30_000 : 60_000;
  await s.net.clock.advance(windowMs);
  for (const name of names) s.net.slow(`sim://${name}`, 0);
  const slowNames = new Set(names);
  const slowFailed = [...s.failedNames].filter((x) => slowNames.has(x)).length;
  const healthyFailed = s.failedNames.size - slowFailed;
  log(
    `sim N=${n}: lifeguard ${lifeguard ? 'on' : 'off'}: ${healthyFailed} of ${n - slowed} healthy and ${slowFailed} of ${slowed} slowed members declared failed (${s.failedEvents} failed events) in ${windowMs / 1000} s`,
  );
  return { healthy: healthyFailed / (n - slowed), slowed: slowFailed / slowed };
}

/**
 * The cluster: join, idle, event and (with `fp`) the two false-positive
 * windows, Lifeguard on, then off. In a function of its own so that nothing
 * keeps its nodes once it returns.
 */
async function runCluster(n: number, seed: number, fp: boolean, log: (m: string) => void) {
  const c0 = process.cpuUsage();
  const sim = build(n, seed);
  const clock = sim.net.clock;
  const join_rounds = await converge(sim, 300_000);
  const join_cpu_s = ((c) => c.user + c.system)(process.cpuUsage(c0)) / 1e6;
  const heap_per_pair_b = heapAfterGc() / n / n;
  log(`sim N=${n}: join converged in ${join_rounds?.toFixed(1) ?? 'timeout'} rounds (${join_cpu_s.toFixed(1)} s CPU; heap ${heap_per_pair_b.toFixed(0)} B per node-member pair)`);
  await clock.advance(5_000);

  // Idle traffic over 10 s of virtual time.
  const out0 = sim.nodes.reduce((s, x) => s + x.stats().messagesOut, 0);
  const f0 = sim.net.stats.framesSent;
  await clock.advance(10_000);
  const msgs_per_member_s = (sim.nodes.reduce((s, x) => s + x.stats().messagesOut, 0) - out0) / n / 10;
  const frames_per_member_s = (sim.net.stats.framesSent - f0) / n / 10;

  // One user event.
  let got = 0;
  for (const x of sim.nodes) x.on('user-event', (e) => e.name === 'sim-ev' && got++);
  const te = clock.now();
  sim.nodes[Math.floor(n / 2)]!.sendEvent('sim-ev', 'x');
  const evOk = await clock.runUntil(() => got >= n, 60_000, 5);
  const event_rounds = evOk ? (clock.now() - te) / profile.gossipInterval : null;
  log(`sim N=${n}: event reached all in ${event_rounds?.toFixed(1) ?? 'timeout'} rounds; ${msgs_per_member_s.toFixed(1)} msgs, ${frames_per_member_s.toFixed(1)} frames /member/s idle`);

  let on: FpResult = null;
  let off: FpResult = null;
  if (fp) {
    on = await fpWindow(sim, true, 0, log);
    // Let the slowed recover (their refutations land in milliseconds now) and everyone see all alive again.
    const recovered = await clock.runUntil(() => allKnowAll(sim.nodes), 60_000, profile.gossipInterval);
    await clock.advance(10_000);
    log(`sim N=${n}: ${recovered ? 'all alive everywhere again' : 'not all alive everywhere after 60 s'}; Lifeguard switched off`);
    for (const node of sim.nodes) setLifeguard(node, false);
    if (recovered) off = await fpWindow(sim, false, slowedCount(n), log);
  }
  await shutdown(sim);
  return { join_rounds, join_cpu_s, heap_per_pair_b, msgs_per_member_s, frames_per_member_s, event_rounds, on, off };
}

/** `fp` false skips the two false-positive windows (Lifeguard on in the first cluster, plain SWIM in a second). */
export async function measureSim(n: number, log: (m: string) => void, seed = 42, fp = true): Promise<SimResult> {
  const w0 = performance.now();
  const c0 = process.cpuUsage();
  const { join_rounds, join_cpu_s, heap_per_pair_b, msgs_per_member_s, frames_per_member_s, event_rounds, on, off } = await runCluster(n, seed, fp, log);
  const slowed = slowedCount(n);
  return {
    n,
    join_rounds,
    event_rounds,
    msgs_per_member_s,
    frames_per_member_s,
    fp_rate_lifeguard_off: off?.healthy ?? null,
    fp_rate_lifeguard_on: on?.healthy ?? null,
    slowed_failed_lifeguard_off: off?.slowed ?? null,
    slowed_failed_lifeguard_on: on?.slowed ?? null,
    wall_s: (performance.now() - w0) / 1000,
    cpu_s: ((c => c.user + c.system)(process.cpuUsage(c0))) / 1e6,
    rss_peak_mb: process.resourceUsage().maxRSS / 1024,
    join_cpu_s,
    heap_per_pair_b,
    slowed: fp ? slowed : 0,
  };
}
