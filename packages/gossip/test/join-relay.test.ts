/**
 * The seed's join relay (join-relay.ts): joiners of a burst learn the
 * members that joined after them from the seed directly, instead of waiting
 * for gossip or the next push-pull. Gossip is slowed down here (one target
 * per second, no follow-up syncs, no periodic push-pull) so that only the
 * relay can explain a fast convergence.
 */
import { describe, expect, it } from 'vitest';
import type { GossipNode } from '../src/node';
import { DEFAULT_LAN_PROFILE, type GossipProfile } from '../src/options';
import { SimCluster, simClusters } from './helpers/sim-cluster';

const { track } = simClusters();

const SLOW_GOSSIP: Partial<GossipProfile> = {
  gossipInterval: 1_000,
  gossipNodes: 1,
  retransmitMult: 1,
  joinFollowUp: 0,
  pushPullInterval: 0,
  probeInterval: 5_000,
  probeTimeout: 1_000,
};

/** n joiners contact the seed `spacingMs` apart (a burst); returns the cluster and its nodes, seed first. */
async function burst(joinRelay: boolean, n: number, spacingMs: number, seed = 11): Promise<{ c: SimCluster; nodes: GossipNode[] }> {
  const c = track(new SimCluster({ seed, latency: [1, 3], tuning: { ...SLOW_GOSSIP, joinRelay } }));
  const nodes = c.addMany(n + 1);
  const [first, ...rest] = nodes as [GossipNode, ...GossipNode[]];
  const joins: Promise<number>[] = [];
  for (const node of rest) {
    joins.push(node.join([first.address]));
    await c.clock.advance(spacingMs);
  }
  let settled = false;
  void Promise.all(joins).then(() => (settled = true));
  await c.clock.runUntil(() => settled, 5_000);
  return { c, nodes };
}

describe('join relay (simulated network)', () => {
  it('tells early joiners of a burst about the later ones within a flush', async () => {
    const { c, nodes } = await burst(true, 30, 5);
    const names = nodes.map((x) => x.name);
    // The burst lasted 150 ms; flushes are gossipInterval / 4 = 250 ms apart here, plus latency.
    const ok = await c.clock.runUntil(() => SimCluster.allAlive(nodes, names), 400, 5);
    expect(ok).toBe(true);
  });

  it('without it, the same burst leaves early joiners unaware of later ones for longer', async () => {
    const { c, nodes } = await burst(false, 30, 5);
    const names = nodes.map((x) => x.name);
    expect(await c.clock.runUntil(() => SimCluster.allAlive(nodes, names), 400, 5)).toBe(false);
    // The first joiner's answer held only the seed: the relay is what told it the rest.
    expect((nodes[1] as GossipNode).members().filter((m) => m.status === 'alive').length).toBeLessThan(nodes.length);
  });

  it('relays a member that left during the burst as left, never as alive', async () => {
    const c = track(new SimCluster({ seed: 5, latency: [1, 3], tuning: { ...SLOW_GOSSIP } }));
    const [seed, early, leaver] = c.addMany(3) as [GossipNode, GossipNode, GossipNode];
    const j1 = early.join([seed.address]);
    await c.clock.advance(5);
    const j2 = leaver.join([seed.address]);
    await c.clock.advance(20);
    await Promise.all([j1, j2]);
    const leaving = leaver.leave();
    await c.clock.advance(3_000);
    await leaving;
    expect(seed.member('n2')?.status).toBe('left');
    // The early joiner either never heard of n2, or knows it left: not alive.
    expect(early.member('n2')?.status ?? 'unknown').not.toBe('alive');
  });

  it('sends each joiner one frame per flush, not one per later joiner', async () => {
    const { c, nodes } = await burst(true, 40, 1);
    const names = nodes.map((x) => x.name);
    expect(await c.clock.runUntil(() => SimCluster.allAlive(nodes, names), 1_000, 5)).toBe(true);
    const seedFrames = (nodes[0] as GossipNode).stats().framesOut;
    // 40 join answers + a handful of flushes to 40 joiners + probes and gossip; per-joiner relays
    // would be ~40 × 40 / 2 = 800 frames.
    expect(seedFrames).toBeLessThan(300);
  });

  it('carries a burst of 400 joiners (several shared chunks per joiner) in one flush', async () => {
    const c = track(new SimCluster({ seed: 3, latency: [1, 5], profile: DEFAULT_LAN_PROFILE }));
    const nodes = c.addMany(401);
    const [first, ...rest] = nodes as [GossipNode, ...GossipNode[]];
    for (const node of rest) node.join([first.address]).catch(() => {});
    const names = nodes.map((x) => x.name);
    // LAN profile: one flush is 50 ms after the first join; gossip alone needs several 200 ms rounds here.
    expect(await c.clock.runUntil(() => SimCluster.allAlive(nodes, names), 300, 10)).toBe(true);
  }, 60_000);
});
