import { afterEach, describe, expect, it } from 'vitest';
import { GossipError } from '../src/errors';
import { Keyring } from '../src/keyring';
import type { GossipNode } from '../src/node';
import { SimCluster } from './helpers/sim-cluster';

let cluster: SimCluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

describe('keyring passthrough (simulated network)', () => {
  it('members sharing a key form a cluster; a node with another key or none cannot join, and its frames are counted', async () => {
    const c = new SimCluster({ seed: 71 });
    cluster = c;
    const key = Keyring.generateKey();
    const nodes = [0, 1, 2].map((i) => c.add(`k${i}`, { keyring: new Keyring(key) }));
    await c.joinAll(nodes, nodes[0] as GossipNode);
    expect(await c.clock.runUntil(() => SimCluster.allAlive(nodes, nodes.map((n) => n.name)), 10_000, 5)).toBe(true);

    const wrongKey = c.add('wrong', { keyring: new Keyring(Keyring.generateKey()), tuning: { joinTimeout: 1_000 } });
    const plain = c.add('plain', { tuning: { joinTimeout: 1_000 } });
    const a = wrongKey.join([(nodes[0] as GossipNode).address]).catch((e: unknown) => e);
    const b = plain.join([(nodes[0] as GossipNode).address]).catch((e: unknown) => e);
    await c.clock.advance(2_000);
    for (const r of [await a, await b]) {
      expect(r).toBeInstanceOf(GossipError);
      expect((r as GossipError).code).toBe('GOSSIP_ERR_JOIN_FAILED');
    }
    const d = (nodes[0] as GossipNode).stats().dropped;
    expect(d.decrypt).toBeGreaterThan(0);
    expect(d.plaintextRefused).toBeGreaterThan(0);
    for (const n of nodes) {
      expect(n.member('wrong')).toBeUndefined();
      expect(n.member('plain')).toBeUndefined();
    }
  });

  it('a key rotation (install, use, remove) keeps the cluster together', async () => {
    const c = new SimCluster({ seed: 72 });
    cluster = c;
    const oldKey = Keyring.generateKey();
    const newKey = Keyring.generateKey();
    const rings = [0, 1, 2, 3].map(() => new Keyring(oldKey));
    const nodes = rings.map((k, i) => c.add(`r${i}`, { keyring: k }));
    await c.joinAll(nodes, nodes[0] as GossipNode);
    expect(await c.clock.runUntil(() => SimCluster.allAlive(nodes, nodes.map((n) => n.name)), 10_000, 5)).toBe(true);
    const failed: string[] = [];
    for (const n of nodes) n.on('member-failed', (m) => failed.push(m.name));
    for (const r of rings) r.install(newKey);
    await c.clock.advance(2_000);
    for (const r of rings) r.use(newKey);
    await c.clock.advance(2_000);
    for (const r of rings) r.remove(oldKey);
    await c.clock.advance(10_000);
    (nodes[1] as GossipNode).sendEvent('rotated');
    let got = 0;
    for (const n of nodes) n.on('user-event', (e) => e.name === 'after' && got++);
    (nodes[2] as GossipNode).sendEvent('after');
    await c.clock.advance(2_000);
    expect(got).toBe(4);
    expect(failed).toEqual([]);
    expect(SimCluster.allAlive(nodes, nodes.map((n) => n.name))).toBe(true);
  });
});
