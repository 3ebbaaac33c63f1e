/**
 * Encryption end to end: nodes on real WebSocket transports sharing a
 * keyring talk; a node with the wrong key or none cannot join and its frames
 * are counted as dropped; a key rotation (install, use, remove) on a live
 * cluster never interrupts it.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { createNode, Keyring, LOCAL_PROFILE } from '../src/index';
import type { GossipNode } from '../src/index';
import { createWsTransport } from '../src/ws-transport';
import { until } from '@rhizome/test-support';

const nodes: GossipNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.shutdown()));
});

/** Nodes expected to fail their join give up after 1 s instead of LOCAL's 3 s. */
async function start(name: string, keyring?: Keyring, joinTimeout = LOCAL_PROFILE.joinTimeout): Promise<GossipNode> {
  const transport = await createWsTransport({ host: '127.0.0.1', port: 0 });
  const node = createNode({ name, transport, profile: LOCAL_PROFILE, tuning: { joinTimeout }, ...(keyring ? { keyring } : {}) });
  nodes.push(node);
  return node;
}

const aliveCount = (n: GossipNode): number => n.members().filter((m) => m.status === 'alive').length;

async function eventArrives(from: GossipNode, to: GossipNode, name: string): Promise<void> {
  const got = new Promise<void>((resolve) => {
    const off = to.on('user-event', (e) => {
      if (e.name === name) {
        off();
        resolve();
      }
    });
  });
  from.sendEvent(name, null);
  await got;
}

describe('encrypted gossip over WebSocket', () => {
  it('nodes with the same key join and talk; wrong key or no key cannot join, and their frames are counted', async () => {
    const key = Keyring.generateKey();
    const a = await start('a', new Keyring(key));
    const b = await start('b', new Keyring(key));
    await b.join([a.address]);
    await until('a and b see each other', () => aliveCount(a) === 2 && aliveCount(b) === 2);
    await eventArrives(a, b, 'hello');

    const intruder = await start('intruder', new Keyring(Keyring.generateKey()), 1_000);
    await expect(intruder.join([a.address])).rejects.toMatchObject({ code: 'GOSSIP_ERR_JOIN_FAILED' });
    expect(a.stats().dropped.decrypt).toBeGreaterThan(0);

    const plain = await start('plain', undefined, 1_000);
    await expect(plain.join([a.address])).rejects.toMatchObject({ code: 'GOSSIP_ERR_JOIN_FAILED' });
    expect(a.stats().dropped.plaintextRefused).toBeGreaterThan(0);

    expect(a.members().map((m) => m.name).sort()).toEqual(['a', 'b']);
  });

  it('rotates keys on a live cluster without losing it', async () => {
    const k1 = Keyring.generateKey();
    const k2 = Keyring.generateKey();
    const ra = new Keyring(k1);
    const rb = new Keyring(k1);
    const a = await start('a', ra);
    const b = await start('b', rb);
    await b.join([a.address]);
    await until('joined', () => aliveCount(a) === 2 && aliveCount(b) === 2);

    ra.install(k2);
    rb.install(k2);
    ra.use(k2); // a writes k2, b still writes k1: both read both
    await eventArrives(a, b, 'a-on-k2');
    await eventArrives(b, a, 'b-on-k1');
    rb.use(k2);
    ra.remove(k1);
    rb.remove(k1);
    await eventArrives(a, b, 'after-rotation');
    await eventArrives(b, a, 'after-rotation-back');

    // A node that only has the retired key is locked out.
    const stale = await start('stale', new Keyring(k1), 1_000);
    await expect(stale.join([a.address])).rejects.toMatchObject({ code: 'GOSSIP_ERR_JOIN_FAILED' });
    // Several probe rounds later (counted in messages each received, not in wall time), nobody was suspected during the rotation.
    const [ma, mb] = [a.stats().messagesIn, b.stats().messagesIn];
    await until('a few probe rounds between a and b', () => a.stats().messagesIn >= ma + 8 && b.stats().messagesIn >= mb + 8);
    expect(a.member('b')?.status).toBe('alive');
    expect(b.member('a')?.status).toBe('alive');
  });

  it('rotates keys through node.keys (cluster key operations) over real sockets, every member answering', async () => {
    const k1 = Keyring.generateKey();
    const k2 = Keyring.generateKey();
    const rings = [new Keyring(k1), new Keyring(k1), new Keyring(k1)];
    const [a, b, c] = [await start('ka', rings[0]), await start('kb', rings[1]), await start('kc', rings[2])];
    await b!.join([a!.address]);
    await c!.join([a!.address]);
    await until('three joined', () => [a!, b!, c!].every((n) => aliveCount(n) === 3));
    const persisted = new Map<string, readonly string[]>();
    for (const n of [a!, b!, c!]) n.on('keyring-change', (ch) => persisted.set(n.name, ch.keys));

    for (const step of [() => b!.keys.install(k2), () => b!.keys.use(k2), () => c!.keys.remove(k1)]) {
      const r = await step();
      expect(r, r.operation).toMatchObject({ members: 3, responses: 3, ok: true, missing: [], errors: {} });
    }
    for (const r of rings) expect(r.list()).toEqual([k2]);
    for (const n of [a!, b!, c!]) expect(persisted.get(n.name)).toEqual([k2]);
    const listed = await a!.keys.list();
    expect(listed.keys).toEqual({ [k2]: 3 });
    await eventArrives(c!, a!, 'after-keys-rotation');
    expect([a!, b!, c!].every((n) => aliveCount(n) === 3)).toBe(true);
  });
});
