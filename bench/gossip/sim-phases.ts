/**
 * Where a large simulation's CPU and memory go, phase by phase: build, join,
 * settle, idle, and a window with 10 % of the members (at most slowedCount(N), sim.ts) slowed
 * by 2.5 s per frame. Prints CPU, heap (JS heap plus typed-array
 * buffers, where the member tables live) after a full GC (and per node-member
 * pair), RSS, frames and timers after each phase; deterministic for a seed,
 * so two builds can be compared frame for frame.
 *
 *   node --expose-gc --import tsx bench/gossip/sim-phases.ts N [lifeguard on|off] [window ms] [seed]
 *   (add --cpu-prof to see the functions)
 */
import { createNode, DEFAULT_LAN_PROFILE, type GossipNode } from '../../packages/gossip/src/index';
import { SimNetwork } from '../../packages/gossip/src/testing';
import { allKnowAll, slowedCount, SLOW_MS } from './sim';

const n = Number(process.argv[2] ?? 1000);
const lifeguard = process.argv[3] !== 'off';
const windowMs = Number(process.argv[4] ?? 10_000);
const seed = Number(process.argv[5] ?? 43);
if (!Number.isInteger(n) || n < 2 || !(windowMs >= 0)) throw new TypeError('usage: sim-phases.ts N [on|off] [window ms] [seed]');

const profile = DEFAULT_LAN_PROFILE;
// No process is killed here: no connection table to keep for reset-on-kill (two map updates per frame).
const net = new SimNetwork({ seed, latency: [1, 5], trusted: true, connectionIdleMs: 0 });
const nodes: GossipNode[] = [];
let failed = 0;
for (let i = 0; i < n; i++) {
  const node = createNode({ name: `n${i}`, transport: net.createTransport(`sim://n${i}`), clock: net.clock, random: net.forkRandom(), profile, tuning: { lifeguard } });
  node.on('member-failed', () => failed++);
  nodes.push(node);
}

let cpu = process.cpuUsage();
const t0 = performance.now();
const phase = (name: string): void => {
  const d = process.cpuUsage(cpu);
  cpu = process.cpuUsage();
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  console.log(
    `${name}: cpu ${((d.user + d.system) / 1e6).toFixed(1)} s, heap ${((m.heapUsed + m.arrayBuffers) / 1e6).toFixed(0)} MB (${((m.heapUsed + m.arrayBuffers) / n / n).toFixed(0)} B/pair), ` +
      `rss ${(m.rss / 1e6).toFixed(0)} MB, frames ${net.stats.framesSent}, timers ${net.clock.fired}, failed ${failed}, wall ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
};

phase('build');
for (const x of nodes.slice(1)) x.join([nodes[0]!.address]).catch(() => {});
const ok = await net.clock.runUntil(() => allKnowAll(nodes), 300_000, profile.gossipInterval / 4);
phase(`join (${ok ? 'converged' : 'timed out'} at ${(net.clock.now() / 1000).toFixed(1)} s)`);
await net.clock.advance(2_000);
phase('settle 2 s');
await net.clock.advance(10_000);
phase('idle 10 s');
const slowed = slowedCount(n);
for (let i = 0; i < slowed; i++) net.slow(`sim://n${n - 1 - i}`, SLOW_MS);
await net.clock.advance(windowMs);
phase(`window ${windowMs / 1000} s, ${slowed} slowed`);
await Promise.all(nodes.map((x) => x.shutdown()));
