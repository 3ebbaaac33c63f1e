import { describe, expect, it } from 'vitest';
import { UnreachableError } from '../src/errors';
import type { GossipNode } from '../src/node';
import { simClusters } from './helpers/sim-cluster';

const { formed } = simClusters({ joinTimeoutMs: 20_000 });

describe('reliable channel', () => {
  it('delivers in order, exactly once, under loss, duplication and reordering', async () => {
    const { c, nodes } = await formed(4, 51, { loss: 0.2, duplicate: 0.3, reorder: true, latency: [1, 40] });
    const [a, b] = nodes as [GossipNode, GossipNode];
    const got: number[] = [];
    b.onReliable((from, payload) => {
      if (from === a.name) got.push(payload as number);
    });
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 300; i++) sends.push(a.sendReliable(b.name, i));
    const all = Promise.all(sends);
    let done = false;
    void all.then(() => (done = true));
    await c.clock.runUntil(() => done, 60_000, 10);
    await all;
    await c.clock.advance(2_000);
    expect(got).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });

  it('keeps order per sender with several senders to one receiver', async () => {
    const { c, nodes } = await formed(5, 52, { loss: 0.1, duplicate: 0.1, reorder: true, latency: [1, 20] });
    const rx = nodes[0] as GossipNode;
    const got = new Map<string, number[]>();
    rx.onReliable((from, p) => {
      const l = got.get(from) ?? [];
      l.push(p as number);
      got.set(from, l);
    });
    const sends = nodes.slice(1).flatMap((n) => Array.from({ length: 50 }, (_, i) => n.sendReliable(rx.name, i)));
    let done = false;
    void Promise.all(sends).then(() => (done = true));
    await c.clock.runUntil(() => done, 60_000, 10);
    expect(done).toBe(true);
    for (const n of nodes.slice(1)) expect(got.get(n.name)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('rejects pending sends and emits unreachable when the member is declared failed', async () => {
    const { c, nodes } = await formed(6, 53);
    const [a, b] = nodes as [GossipNode, GossipNode];
    const unreachable: string[] = [];
    a.on('unreachable', (e) => unreachable.push(`${e.member}:${e.reason}`));
    c.net.kill(b.address);
    const p = a.sendReliable(b.name, 'hello?');
    const outcome = p.then(() => 'delivered', (e: unknown) => e);
    await c.clock.advance(5_000);
    const err = await outcome;
    expect(err).toBeInstanceOf(UnreachableError);
    expect((err as UnreachableError).reason).toBe('failed');
    expect(unreachable).toEqual([`${b.name}:failed`]);
    await expect(a.sendReliable(b.name, 'again')).rejects.toBeInstanceOf(UnreachableError);
  });

  it('reports unreachable after retransmits run out when the peer is silently partitioned', async () => {
    const { c, nodes } = await formed(3, 54, { tuning: { reliableMaxRetransmits: 5, suspicionMaxTimeoutMult: 6 } });
    const [a, b] = nodes as [GossipNode, GossipNode];
    // Only the a→b link loses everything: b stays alive for everybody (probes through others succeed).
    c.net.setLink(a.address, b.address, { loss: 1 });
    c.net.setLink(b.address, a.address, { loss: 1 });
    const outcome = a.sendReliable(b.name, 1).then(() => 'delivered', (e: unknown) => e);
    await c.clock.advance(3_000);
    const err = await outcome;
    expect(err).toBeInstanceOf(UnreachableError);
    expect(['timeout', 'failed']).toContain((err as UnreachableError).reason);
  });

  it('after a give-up, later messages are still delivered in order (the receiver skips the abandoned ones)', async () => {
    const { c, nodes } = await formed(3, 55, { tuning: { reliableMaxRetransmits: 3 } });
    const [a, b] = nodes as [GossipNode, GossipNode];
    const got: unknown[] = [];
    b.onReliable((_f, p) => got.push(p));
    await Promise.all([a.sendReliable(b.name, 'first'), c.clock.advance(500)]);
    c.net.setLink(a.address, b.address, { loss: 1 });
    const lost = a.sendReliable(b.name, 'lost').catch((e: unknown) => e);
    await c.clock.advance(1_000);
    expect(await lost).toBeInstanceOf(UnreachableError);
    c.net.setLink(a.address, b.address, { loss: 0 });
    const next = a.sendReliable(b.name, 'next');
    await c.clock.advance(1_000);
    await next;
    expect(got).toEqual(['first', 'next']);
  });

  it('a restarted receiver gets what was not acknowledged, and a restarted sender starts a new session', async () => {
    const { c, nodes } = await formed(3, 56);
    const [a, b] = nodes as [GossipNode, GossipNode];
    const got: unknown[] = [];
    b.onReliable((_f, p) => got.push(p));
    const first = a.sendReliable(b.name, 1);
    await c.clock.advance(500);
    await first;
    // The sender restarts: a new node with the same name and address.
    c.net.kill(a.address);
    await a.shutdown();
    const a2 = c.add(a.name, {}, a.address);
    const j = a2.join([b.address]);
    await c.clock.advance(2_000);
    await j;
    await c.clock.runUntil(() => a2.member(b.name)?.status === 'alive' && b.member(a.name)?.status === 'alive', 10_000, 5);
    const again = a2.sendReliable(b.name, 'from the new session');
    await c.clock.advance(1_000);
    await again;
    expect(got).toEqual([1, 'from the new session']);
  });
});
