/**
 * Cluster-wide key operations (`node.keys`, serf keys semantics): every
 * live member answers; a rotation (install, use, remove) on a live cluster
 * loses and splits nobody; a member that missed an operation is reported;
 * the primary key cannot be removed; each member announces its changes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GossipError, Keyring, KeyringError } from '../src/index';
import type { GossipNode, KeyringChange } from '../src/index';
import { SimCluster } from './helpers/sim-cluster';

let cluster: SimCluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

async function formed(n: number, seed: number, key: string): Promise<{ c: SimCluster; nodes: GossipNode[]; rings: Keyring[] }> {
  const c = new SimCluster({ seed, latency: [1, 5] });
  cluster = c;
  const rings = Array.from({ length: n }, () => new Keyring(key));
  const nodes = rings.map((k, i) => c.add(`k${i}`, { keyring: k }));
  await c.joinAll(nodes, nodes[0]!);
  expect(await c.clock.runUntil(() => SimCluster.allAlive(nodes, nodes.map((x) => x.name)), 10_000, 5)).toBe(true);
  return { c, nodes, rings };
}

/** Runs a key operation to completion on virtual time. */
async function settle<T>(c: SimCluster, p: Promise<T>, maxMs = 5_000): Promise<T> {
  let done = false;
  const out = p.finally(() => {
    done = true;
  });
  await c.clock.runUntil(() => done, maxMs);
  return out;
}

describe('key operations across the cluster', () => {
  it('rotates keys on a live cluster (install, use, remove) with no member lost or split', async () => {
    const oldKey = Keyring.generateKey();
    const newKey = Keyring.generateKey();
    const { c, nodes, rings } = await formed(5, 301, oldKey);
    const failed: string[] = [];
    const changes = new Map<string, KeyringChange[]>();
    for (const n of nodes) {
      n.on('member-failed', (m) => failed.push(m.name));
      n.on('keyring-change', (ch) => changes.set(n.name, [...(changes.get(n.name) ?? []), ch]));
    }
    const admin = nodes[2]!;

    const listed = await settle(c, admin.keys.list());
    expect(listed).toMatchObject({ operation: 'list', members: 5, responses: 5, ok: true, missing: [] });
    expect(listed.keys).toEqual({ [oldKey]: 5 });
    expect(listed.primaryKeys).toEqual({ [oldKey]: 5 });

    const installed = await settle(c, admin.keys.install(newKey));
    expect(installed).toMatchObject({ members: 5, responses: 5, ok: true, errors: {} });
    const used = await settle(c, admin.keys.use(newKey));
    expect(used.ok).toBe(true);
    for (const r of rings) expect(r.primary()).toBe(newKey);
    await c.clock.advance(1_000);
    const removed = await settle(c, admin.keys.remove(oldKey));
    expect(removed.ok).toBe(true);
    for (const r of rings) expect(r.list()).toEqual([newKey]);

    const after = await settle(c, nodes[4]!.keys.list());
    expect(after.keys).toEqual({ [newKey]: 5 });
    // Every member announced each of its three changes, with the keyring to persist.
    for (const n of nodes) {
      expect((changes.get(n.name) ?? []).map((ch) => ch.operation)).toEqual(['install', 'use', 'remove']);
      expect(changes.get(n.name)!.at(-1)!.keys).toEqual([newKey]);
    }
    // Still one cluster, exchanging events.
    let got = 0;
    for (const n of nodes) n.on('user-event', (e) => e.name === 'after-rotation' && got++);
    nodes[1]!.sendEvent('after-rotation');
    expect(await c.clock.runUntil(() => got === 5, 3_000, 5)).toBe(true);
    await c.clock.advance(5_000);
    expect(failed).toEqual([]);
    expect(SimCluster.allAlive(nodes, nodes.map((n) => n.name))).toBe(true);
  });

  it('reports the member that missed an operation, and each member error', async () => {
    const oldKey = Keyring.generateKey();
    const newKey = Keyring.generateKey();
    const { c, nodes, rings } = await formed(4, 302, oldKey);
    const late = nodes[3]!;
    c.net.silence(late.address);
    const installed = await settle(c, nodes[0]!.keys.install(newKey, { timeout: 400 }));
    c.net.unsilence(late.address);
    expect(installed.ok).toBe(false);
    expect(installed.missing).toEqual([late.name]);
    expect(installed.responses).toBe(3);
    expect(rings[3]!.list()).toEqual([oldKey]);

    // `use` now: the member without the key answers with an error (it cannot use what it does not hold).
    await c.clock.advance(500);
    const used = await settle(c, nodes[0]!.keys.use(newKey));
    expect(Object.keys(used.errors)).toEqual([late.name]);
    expect(used.errors[late.name]).toMatch(/not installed/);
    expect(used.ok).toBe(false);
  });

  it('refuses removing the primary key, keys that are not keys, and clusters without a keyring', async () => {
    const key = Keyring.generateKey();
    const { c, nodes, rings } = await formed(3, 303, key);
    await expect(nodes[0]!.keys.remove(key)).rejects.toMatchObject({ code: 'GOSSIP_ERR_REMOVE_PRIMARY' });
    await expect(nodes[0]!.keys.install('not a key')).rejects.toBeInstanceOf(KeyringError);
    // Another member's primary: it refuses, the others (where it is not primary) accept.
    const other = Keyring.generateKey();
    rings[1]!.install(other);
    rings[1]!.use(other);
    rings[0]!.install(other);
    rings[2]!.install(other);
    const removed = await settle(c, nodes[0]!.keys.remove(other));
    expect(Object.keys(removed.errors)).toEqual([nodes[1]!.name]);
    expect(removed.errors[nodes[1]!.name]).toMatch(/primary/);

    const plain = c.add('plain');
    await expect(plain.keys.list()).rejects.toBeInstanceOf(GossipError);
    await expect(plain.keys.list()).rejects.toMatchObject({ code: 'GOSSIP_ERR_NO_KEYRING' });
    expect(() => nodes[0]!.query('_gossip:keys:list')).toThrow(/node's own/);
    expect(() => nodes[0]!.onQuery('_gossip:keys:install', () => null)).toThrow(/node's own/);
  });
});
