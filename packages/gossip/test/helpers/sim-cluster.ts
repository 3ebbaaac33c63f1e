/**
 * Test helper: a cluster of real GossipNodes on a SimNetwork with virtual time.
 */
import { afterEach, expect } from 'vitest';
import { createNode, type GossipNode, type GossipNodeOptions } from '../../src/node';
import { LOCAL_PROFILE, type GossipProfile } from '../../src/options';
import { SimNetwork, type SimNetworkOptions } from '../../src/sim-network';
import type { MemberStatus } from '../../src/member';

export interface ClusterOptions extends SimNetworkOptions {
  profile?: GossipProfile;
  tuning?: Partial<GossipProfile>;
}

export class SimCluster {
  readonly net: SimNetwork;
  readonly nodes: GossipNode[] = [];
  private readonly profile: GossipProfile;
  private readonly tuning: Partial<GossipProfile>;

  constructor(options: ClusterOptions = {}) {
    const { profile, tuning, ...netOptions } = options;
    this.net = new SimNetwork(netOptions);
    this.profile = profile ?? LOCAL_PROFILE;
    this.tuning = tuning ?? {};
  }

  get clock() {
    return this.net.clock;
  }

  add(name: string, extra: Partial<GossipNodeOptions> = {}, address = `sim://${name}`): GossipNode {
    const node = createNode({
      name,
      transport: this.net.createTransport(address),
      clock: this.net.clock,
      random: this.net.forkRandom(),
      profile: this.profile,
      tuning: this.tuning,
      ...extra,
    });
    this.nodes.push(node);
    return node;
  }

  /** Add n nodes named prefix0..prefix(n-1). */
  addMany(n: number, prefix = 'n'): GossipNode[] {
    const out: GossipNode[] = [];
    for (let i = 0; i < n; i++) out.push(this.add(`${prefix}${i}`));
    return out;
  }

  node(name: string): GossipNode {
    const n = this.nodes.find((x) => x.name === name && x.running);
    if (!n) throw new Error(`no running node ${name}`);
    return n;
  }

  /** Every node in `nodes` joins through `seed` at once; waits for the join promises in virtual time. */
  async joinAll(nodes: GossipNode[], seed: GossipNode, maxMs = 10_000): Promise<void> {
    const joins = nodes.filter((n) => n !== seed).map((n) => n.join([seed.address]));
    let settled = 0;
    const all = Promise.allSettled(joins).then((r) => {
      settled = r.length;
      return r;
    });
    await this.clock.runUntil(() => settled === joins.length, maxMs);
    const results = await all;
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed.length > 0) throw new Error(`${failed.length} joins failed: ${String((failed[0] as PromiseRejectedResult).reason)}`);
  }

  /** Whether every node in `observers` sees exactly `expected` (name → status) for those names. */
  static sees(observers: readonly GossipNode[], expected: ReadonlyMap<string, MemberStatus>): boolean {
    for (const o of observers) {
      for (const [name, status] of expected) {
        if (name === o.name) continue;
        if (o.member(name)?.status !== status) return false;
      }
    }
    return true;
  }

  static allAlive(observers: readonly GossipNode[], names: readonly string[]): boolean {
    return SimCluster.sees(observers, new Map(names.map((n) => [n, 'alive' as MemberStatus])));
  }

  async shutdown(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.shutdown()));
  }
}

/**
 * Per-file fixture for simulated clusters: registers an afterEach that shuts
 * down the cluster a test built, and returns `formed` (a cluster of n nodes
 * joined through the first, all seeing each other alive) and `track` (for
 * tests that build their own cluster).
 */
export function simClusters(defaults: { joinTimeoutMs?: number; convergeMs?: number } = {}): {
  formed(n: number, seed: number, opts?: ConstructorParameters<typeof SimCluster>[0]): Promise<{ c: SimCluster; nodes: GossipNode[] }>;
  track(c: SimCluster): SimCluster;
} {
  let current: SimCluster | null = null;
  afterEach(async () => {
    await current?.shutdown();
    current = null;
  });
  const track = (c: SimCluster): SimCluster => {
    current = c;
    return c;
  };
  const formed = async (n: number, seed: number, opts: ConstructorParameters<typeof SimCluster>[0] = {}) => {
    const c = track(new SimCluster({ seed, latency: [1, 5], ...opts }));
    const nodes = c.addMany(n);
    if (defaults.joinTimeoutMs !== undefined) await c.joinAll(nodes, nodes[0] as GossipNode, defaults.joinTimeoutMs);
    else await c.joinAll(nodes, nodes[0] as GossipNode);
    const ok = await c.clock.runUntil(() => SimCluster.allAlive(nodes, nodes.map((x) => x.name)), defaults.convergeMs ?? 30_000, 10);
    expect(ok).toBe(true);
    return { c, nodes };
  };
  return { formed, track };
}
