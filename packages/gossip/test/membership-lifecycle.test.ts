import { describe, expect, it } from 'vitest';
import { GossipError } from '../src/errors';
import type { Member } from '../src/member';
import type { GossipNode } from '../src/node';
import { SimCluster, simClusters } from './helpers/sim-cluster';

const { formed, track } = simClusters();

describe('graceful leave', () => {
  it('is seen as left by every member and never as failed, even after the node shuts down', async () => {
    const { c, nodes } = await formed(20, 21);
    const leaver = nodes[9] as GossipNode;
    const others = nodes.filter((n) => n !== leaver);
    const failed: Member[] = [];
    const left: string[] = [];
    for (const n of others) {
      n.on('member-failed', (m) => failed.push(m));
      n.on('member-leave', (m) => m.name === leaver.name && left.push(n.name));
    }
    const p = leaver.leave();
    await c.clock.runUntil(() => false, 3_000);
    await p;
    await leaver.shutdown();
    const ok = await c.clock.runUntil(() => SimCluster.sees(others, new Map([[leaver.name, 'left']])), 10_000, 1);
    expect(ok).toBe(true);
    await c.clock.advance(30_000);
    expect(failed).toEqual([]);
    expect(left.sort()).toEqual(others.map((n) => n.name).sort());
    for (const n of others) expect(n.member(leaver.name)?.status).toBe('left');
  });

  it('many members leaving and shutting down at once are all seen as left', async () => {
    const { c, nodes } = await formed(30, 22);
    const leavers = nodes.slice(10, 20);
    const stay = nodes.filter((n) => !leavers.includes(n));
    const failed: Member[] = [];
    for (const n of stay) n.on('member-failed', (m) => failed.push(m));
    const leaving = Promise.all(leavers.map(async (n) => {
      await n.leave();
      await n.shutdown();
    }));
    await c.clock.advance(5_000);
    await leaving;
    await c.clock.advance(20_000);
    expect(failed).toEqual([]);
    expect(SimCluster.sees(stay, new Map(leavers.map((n) => [n.name, 'left'] as const)))).toBe(true);
  });

  it('tombstones are reaped after tombstoneTimeout with member-reap', async () => {
    const { c, nodes } = await formed(5, 23, { tuning: { tombstoneTimeout: 10_000 } });
    const leaver = nodes[1] as GossipNode;
    const reaped: string[] = [];
    for (const n of nodes) n.on('member-reap', (m) => reaped.push(`${n.name}:${m.name}`));
    const p = leaver.leave();
    await c.clock.advance(2_000);
    await p;
    await leaver.shutdown();
    await c.clock.advance(15_000);
    const others = nodes.filter((n) => n !== leaver);
    for (const n of others) expect(n.member(leaver.name)).toBeUndefined();
    expect(reaped.filter((r) => r.endsWith(`:${leaver.name}`))).toHaveLength(others.length);
  });
});

describe('leave and come back', () => {
  it('a node that left can join again (new incarnation, member-join everywhere), and a throwing listener harms nobody', async () => {
    const { c, nodes } = await formed(8, 29);
    const n = nodes[4] as GossipNode;
    const others = nodes.filter((x) => x !== n);
    const errors: string[] = [];
    const logged = c.add('observer', {
      logger: { debug: () => {}, info: () => {}, warn: () => {}, error: (_o, m) => errors.push(m) },
    });
    logged.on('member-join', () => {
      throw new Error('listener bug');
    });
    const j0 = logged.join([(nodes[0] as GossipNode).address]);
    await c.clock.advance(2_000);
    await j0;
    const p = n.leave();
    await c.clock.advance(3_000);
    await p;
    expect(SimCluster.sees(others, new Map([[n.name, 'left']]))).toBe(true);
    const rejoined: string[] = [];
    for (const o of others) o.on('member-join', (m) => m.name === n.name && rejoined.push(o.name));
    const j = n.join([(nodes[0] as GossipNode).address]);
    await c.clock.advance(3_000);
    await j;
    expect(SimCluster.allAlive([...others, logged], [...nodes.map((x) => x.name), logged.name])).toBe(true);
    expect(rejoined.sort()).toEqual(others.map((o) => o.name).sort());
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]).toMatch(/listener threw/);
  });
});

describe('tags', () => {
  it('setTags reaches every member as member-update', async () => {
    const { c, nodes } = await formed(20, 24);
    const changer = nodes[3] as GossipNode;
    const updates: string[] = [];
    for (const n of nodes) n.on('member-update', (m) => m.name === changer.name && updates.push(n.name));
    changer.setTags({ role: 'db', zone: 'b' });
    const ok = await c.clock.runUntil(
      () => nodes.every((n) => n.member(changer.name)?.tags['role'] === 'db' && n.member(changer.name)?.tags['zone'] === 'b'),
      5_000,
      1,
    );
    expect(ok).toBe(true);
    expect(updates.sort()).toEqual(nodes.filter((n) => n !== changer).map((n) => n.name).sort());
    expect(() => changer.setTags({ big: 'x'.repeat(600) })).toThrow(TypeError);
  });
});

describe('restart and conflicts', () => {
  it('a crashed member that restarts at the same address rejoins with a higher incarnation', async () => {
    const { c, nodes } = await formed(10, 25);
    const victim = nodes[6] as GossipNode;
    const others = nodes.filter((n) => n !== victim);
    c.net.kill(victim.address);
    await victim.shutdown();
    expect(await c.clock.runUntil(() => SimCluster.sees(others, new Map([[victim.name, 'failed']])), 10_000, 1)).toBe(true);
    const oldInc = (others[0] as GossipNode).member(victim.name)?.incarnation ?? 0;
    const joins: string[] = [];
    for (const n of others) n.on('member-join', (m) => m.name === victim.name && joins.push(n.name));
    const reborn = c.add(victim.name, {}, victim.address);
    const join = reborn.join([(nodes[0] as GossipNode).address]);
    await c.clock.advance(2_000);
    await expect(join).resolves.toBe(1);
    const all = [...others, reborn];
    expect(await c.clock.runUntil(() => SimCluster.allAlive(all, all.map((n) => n.name)), 10_000, 5)).toBe(true);
    for (const n of others) expect(n.member(victim.name)?.incarnation).toBeGreaterThan(oldInc);
    expect(joins.sort()).toEqual(others.map((n) => n.name).sort());
  });

  it('a second node claiming a live member\'s name is refused, counted, and its join fails', async () => {
    const { c, nodes } = await formed(5, 26);
    const original = nodes[2] as GossipNode;
    const impostor = c.add(original.name, {}, 'sim://impostor');
    const conflicts: string[] = [];
    impostor.on('name-conflict', (e) => conflicts.push(e.ownerAddress));
    const join = impostor.join([(nodes[0] as GossipNode).address]);
    const settled = join.then(() => 'resolved', (e: unknown) => e);
    await c.clock.advance(5_000);
    const result = await settled;
    expect(result).toBeInstanceOf(GossipError);
    expect((result as GossipError).code).toBe('GOSSIP_ERR_NAME_CONFLICT');
    expect(conflicts).toContain(original.address);
    expect((nodes[0] as GossipNode).stats().dropped.spoofed).toBeGreaterThan(0);
    await c.clock.advance(5_000);
    for (const n of nodes) if (n !== original) expect(n.member(original.name)?.address).toBe(original.address);
    await impostor.shutdown();
  });
});

describe('partitions and loss', () => {
  it('a partition is detected on both sides and heals by itself through push-pull', async () => {
    const { c, nodes } = await formed(20, 27);
    const a = nodes.slice(0, 10);
    const b = nodes.slice(10);
    c.net.partition(a.map((n) => n.address), b.map((n) => n.address));
    const split = await c.clock.runUntil(
      () =>
        SimCluster.sees(a, new Map(b.map((n) => [n.name, 'failed'] as const))) &&
        SimCluster.sees(b, new Map(a.map((n) => [n.name, 'failed'] as const))),
      60_000,
      10,
    );
    expect(split).toBe(true);
    c.net.heal();
    const t0 = c.clock.now();
    const healed = await c.clock.runUntil(() => SimCluster.allAlive(nodes, nodes.map((n) => n.name)), 120_000, 50);
    expect(healed).toBe(true);
    // pushPullInterval is 5 s on LOCAL: healing needs a few rounds at most.
    expect(c.clock.now() - t0).toBeLessThan(60_000);
  }, 60_000);

  it('converges with 20% message loss and still detects a killed node', async () => {
    const c = new SimCluster({ seed: 28, latency: [1, 10], loss: 0.2 });
    track(c);
    const nodes = c.addMany(30);
    await c.joinAll(nodes, nodes[0] as GossipNode, 20_000);
    const ok = await c.clock.runUntil(() => SimCluster.allAlive(nodes, nodes.map((x) => x.name)), 30_000, 10);
    expect(ok).toBe(true);
    const victim = nodes[17] as GossipNode;
    const survivors = nodes.filter((n) => n !== victim);
    c.net.kill(victim.address);
    expect(await c.clock.runUntil(() => SimCluster.sees(survivors, new Map([[victim.name, 'failed']])), 20_000, 5)).toBe(true);
  }, 60_000);
});
