import { describe, expect, it } from 'vitest';
import type { GossipNode } from '../src/node';
import type { Member } from '../src/member';
import { DEFAULT_LAN_PROFILE } from '../src/options';
import { SimCluster, simClusters } from './helpers/sim-cluster';

const { formed, track } = simClusters({ convergeMs: 20_000 });

function recordFailures(nodes: readonly GossipNode[]): Member[] {
  const failed: Member[] = [];
  for (const n of nodes) n.on('member-failed', (m) => failed.push(m));
  return failed;
}

describe('failure detection (simulated network, LOCAL profile)', () => {
  it('a killed node (connection refused) is declared failed by every survivor in about a second', async () => {
    const { c, nodes } = await formed(20, 11);
    const victim = nodes[7] as GossipNode;
    const survivors = nodes.filter((n) => n !== victim);
    c.net.kill(victim.address);
    const t0 = c.clock.now();
    const ok = await c.clock.runUntil(() => SimCluster.sees(survivors, new Map([[victim.name, 'failed']])), 10_000, 1);
    const elapsed = c.clock.now() - t0;
    expect(ok).toBe(true);
    // Peers holding connections see a reset, others a refusal: two witnesses cut the wait to 200 ms.
    expect(elapsed).toBeLessThan(500);
    for (const s of survivors) expect(s.member(victim.name)?.status).toBe('failed');
  });

  it.each([5, 20, 50])('with the LAN profile too, a killed node is failed everywhere in under a second (N = %i)', async (n) => {
    const c = new SimCluster({ seed: n, latency: [0.1, 1], profile: DEFAULT_LAN_PROFILE });
    track(c);
    const nodes = c.addMany(n);
    await c.joinAll(nodes, nodes[0] as GossipNode);
    expect(await c.clock.runUntil(() => SimCluster.allAlive(nodes, nodes.map((x) => x.name)), 60_000, 10)).toBe(true);
    await c.clock.advance(10_000);
    const victim = nodes[n - 1] as GossipNode;
    const survivors = nodes.filter((x) => x !== victim);
    const failed = recordFailures(survivors);
    c.net.kill(victim.address);
    const t0 = c.clock.now();
    expect(await c.clock.runUntil(() => SimCluster.sees(survivors, new Map([[victim.name, 'failed']])), 30_000, 1)).toBe(true);
    expect(c.clock.now() - t0).toBeLessThan(1_000);
    // Only the dead one.
    expect(new Set(failed.map((m) => m.name))).toEqual(new Set([victim.name]));
  });

  it('a silenced (hung) node is declared failed through the normal SWIM timers', async () => {
    const { c, nodes } = await formed(10, 12);
    const victim = nodes[3] as GossipNode;
    const survivors = nodes.filter((n) => n !== victim);
    c.net.silence(victim.address);
    const t0 = c.clock.now();
    const ok = await c.clock.runUntil(() => SimCluster.sees(survivors, new Map([[victim.name, 'failed']])), 30_000, 5);
    expect(ok).toBe(true);
    // No refusals, so it takes probe + suspicion (min 0.6 s .. max 3.6 s at N = 10).
    expect(c.clock.now() - t0).toBeGreaterThan(600);
  });

  it('no false positives in a healthy cluster over ten virtual minutes', async () => {
    const { c, nodes } = await formed(30, 13, { latency: [1, 20] });
    const failed = recordFailures(nodes);
    const suspected: Member[] = [];
    for (const n of nodes) n.on('member-suspect', (m) => suspected.push(m));
    await c.clock.advance(600_000);
    expect(failed).toEqual([]);
    expect(suspected).toEqual([]);
    expect(SimCluster.allAlive(nodes, nodes.map((x) => x.name))).toBe(true);
  }, 120_000);

  it.each([14, 114, 214])('a slow member is suspected but refutes, and is never declared failed (seed %i)', async (seed) => {
    const { c, nodes } = await formed(10, seed);
    const slow = nodes[4] as GossipNode;
    const failed = recordFailures(nodes);
    const suspected: Member[] = [];
    for (const n of nodes) n.on('member-suspect', (m) => suspected.push(m));
    // Each frame to or from it takes 120 ms more: every probe of it misses the 100 ms timeout.
    c.net.slow(slow.address, 120);
    await c.clock.advance(60_000);
    expect(suspected.length).toBeGreaterThan(0);
    expect(failed.filter((m) => m.name === slow.name)).toEqual([]);
    expect(slow.localMember().incarnation).toBeGreaterThan(1); // it refuted
    c.net.slow(slow.address, 0);
    const ok = await c.clock.runUntil(() => SimCluster.allAlive(nodes, nodes.map((x) => x.name)), 10_000, 10);
    expect(ok).toBe(true);
    expect(failed).toEqual([]);
  }, 60_000);

  it.each([
    [10, 1],
    [10, 2],
    [10, 3],
    [20, 1],
    [20, 2],
    [50, 1],
  ])('LAN profile: members stalled 2.5 s each way are never failed, while a hung one is (N = %i, seed %i)', async (n, seed) => {
    const c = new SimCluster({ seed: 1_000 * seed + n, latency: [1, 5], profile: DEFAULT_LAN_PROFILE });
    track(c);
    const nodes = c.addMany(n);
    await c.joinAll(nodes, nodes[0] as GossipNode);
    expect(await c.clock.runUntil(() => SimCluster.allAlive(nodes, nodes.map((x) => x.name)), 60_000, 10)).toBe(true);
    await c.clock.advance(5_000);
    const failed = recordFailures(nodes);
    const slowed = nodes.slice(1, 1 + Math.max(1, Math.round(n / 10)));
    for (const s of slowed) c.net.slow(s.address, 2_500);
    const hung = nodes[n - 1] as GossipNode;
    c.net.silence(hung.address);
    await c.clock.advance(60_000);
    const healthyObservers = nodes.filter((x) => !slowed.includes(x) && x !== hung);
    // The hung host is failed everywhere; the slow ones were suspected but refuted every time.
    expect(SimCluster.sees(healthyObservers, new Map([[hung.name, 'failed']]))).toBe(true);
    expect(failed.filter((m) => m.name !== hung.name)).toEqual([]);
    for (const s of slowed) c.net.slow(s.address, 0);
    const live = nodes.filter((x) => x !== hung);
    expect(await c.clock.runUntil(() => SimCluster.allAlive(live, live.map((x) => x.name)), 30_000, 10)).toBe(true);
  }, 60_000);

  it.each([15, 115, 215, 315, 415])('a member silenced briefly refutes the suspicion and stays alive (seed %i)', async (seed) => {
    const { c, nodes } = await formed(10, seed);
    const victim = nodes[2] as GossipNode;
    const failed = recordFailures(nodes);
    c.net.silence(victim.address);
    const others = nodes.filter((n) => n !== victim);
    const suspectedSeen = await c.clock.runUntil(() => others.some((n) => n.member(victim.name)?.status === 'suspect'), 5_000, 1);
    expect(suspectedSeen).toBe(true);
    c.net.unsilence(victim.address);
    const ok = await c.clock.runUntil(() => SimCluster.allAlive(nodes, nodes.map((x) => x.name)), 10_000, 5);
    expect(ok).toBe(true);
    expect(failed).toEqual([]);
    expect(victim.localMember().incarnation).toBeGreaterThan(1);
  });

  it('a member silenced for long is declared failed, then rejoins by itself when it comes back', async () => {
    const { c, nodes } = await formed(10, 16);
    const victim = nodes[5] as GossipNode;
    const others = nodes.filter((n) => n !== victim);
    c.net.silence(victim.address);
    expect(await c.clock.runUntil(() => SimCluster.sees(others, new Map([[victim.name, 'failed']])), 30_000, 5)).toBe(true);
    const rejoined: string[] = [];
    for (const n of others) n.on('member-join', (m) => m.name === victim.name && rejoined.push(n.name));
    c.net.unsilence(victim.address);
    const ok = await c.clock.runUntil(() => SimCluster.allAlive(nodes, nodes.map((x) => x.name)), 60_000, 10);
    expect(ok).toBe(true);
    expect(new Set(rejoined).size).toBe(others.length);
  }, 60_000);
});
