import { afterEach, describe, expect, it } from 'vitest';
import type { GossipNode } from '../src/node';
import type { Member } from '../src/member';
import { SimCluster } from './helpers/sim-cluster';

let cluster: SimCluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

describe('join convergence (simulated network)', () => {
  it.each([50, 200])('%i nodes joining through one seed all see each other alive', async (n) => {
    cluster = new SimCluster({ seed: n, latency: [1, 10] });
    const nodes = cluster.addMany(n);
    const names = nodes.map((x) => x.name);
    await cluster.joinAll(nodes, nodes[0] as GossipNode);
    const ok = await cluster.clock.runUntil(() => SimCluster.allAlive(nodes, names), 20_000, 50);
    expect(ok).toBe(true);
    for (const node of nodes) {
      expect(node.members().filter((m) => m.status === 'alive')).toHaveLength(n);
      expect(node.liveMemberCount()).toBe(n);
    }
    // A member that leaves is no longer counted live anywhere (its tombstone stays listed).
    const leaving = (nodes[1] as GossipNode).leave();
    const rest = nodes.filter((_, i) => i !== 1);
    const left = await cluster.clock.runUntil(() => rest.every((x) => x.liveMemberCount() === n - 1), 20_000, 50);
    expect(left).toBe(true);
    expect((nodes[0] as GossipNode).members()).toHaveLength(n);
    await cluster.clock.advance(5_000);
    await leaving;
  }, 120_000);

  it('emits member-join once per member on every node', async () => {
    cluster = new SimCluster({ seed: 7 });
    const nodes = cluster.addMany(10);
    const joins = new Map<string, string[]>();
    for (const node of nodes) {
      joins.set(node.name, []);
      node.on('member-join', (m: Member) => joins.get(node.name)?.push(m.name));
    }
    await cluster.joinAll(nodes, nodes[0] as GossipNode);
    await cluster.clock.runUntil(() => SimCluster.allAlive(nodes, nodes.map((x) => x.name)), 10_000, 10);
    await cluster.clock.advance(5_000);
    for (const node of nodes) {
      const seen = joins.get(node.name) ?? [];
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.sort()).toEqual(nodes.map((x) => x.name).filter((x) => x !== node.name).sort());
    }
  });
});
