import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_PAYLOAD_DEPTH } from '../src/internal/codec';
import { GossipError } from '../src/errors';
import type { GossipNode } from '../src/node';
import type { UserEvent } from '../src/user-events';
import { SimCluster, simClusters } from './helpers/sim-cluster';

const { formed } = simClusters();

function record(nodes: readonly GossipNode[]): Map<string, UserEvent[]> {
  const got = new Map<string, UserEvent[]>();
  for (const n of nodes) {
    const list: UserEvent[] = [];
    got.set(n.name, list);
    n.on('user-event', (e) => list.push(e));
  }
  return got;
}

describe('user events', () => {
  it('every member receives every event exactly once, even with loss and duplication', async () => {
    const { c, nodes } = await formed(30, 31, { loss: 0.05, duplicate: 0.2 });
    const got = record(nodes);
    const sent: string[] = [];
    for (let i = 0; i < 20; i++) {
      const sender = nodes[(i * 7) % nodes.length] as GossipNode;
      sender.sendEvent('deploy', { i, from: sender.name });
      sent.push(`${sender.name}:${i}`);
      await c.clock.advance(37);
    }
    const ok = await c.clock.runUntil(() => [...got.values()].every((l) => l.length >= sent.length), 20_000, 10);
    expect(ok).toBe(true);
    await c.clock.advance(10_000);
    for (const [, list] of got) {
      const keys = list.map((e) => {
        const p = e.payload as { i: number; from: string };
        return `${p.from}:${p.i}`;
      });
      expect(keys.sort()).toEqual([...sent].sort());
    }
  });

  it('a late joiner does not get events sent before it joined, but gets later ones', async () => {
    const { c, nodes } = await formed(10, 32);
    for (let i = 0; i < 5; i++) (nodes[i] as GossipNode).sendEvent('old', i);
    await c.clock.advance(3_000);
    const late = c.add('late');
    const lateGot: UserEvent[] = [];
    late.on('user-event', (e) => lateGot.push(e));
    const join = late.join([(nodes[3] as GossipNode).address]);
    await c.clock.advance(500);
    await join;
    await c.clock.advance(3_000);
    expect(lateGot).toEqual([]);
    (nodes[1] as GossipNode).sendEvent('new', 'hello');
    await c.clock.runUntil(() => lateGot.length > 0, 5_000, 1);
    await c.clock.advance(3_000);
    expect(lateGot.map((e) => e.name)).toEqual(['new']);
  });

  it('rejects an event above the size limit with a typed error', async () => {
    const { nodes } = await formed(3, 33);
    const n = nodes[0] as GossipNode;
    let err: unknown;
    try {
      n.sendEvent('big', 'x'.repeat(600));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GossipError);
    expect((err as GossipError).code).toBe('GOSSIP_ERR_EVENT_TOO_LARGE');
    expect(() => n.sendEvent('small', 'x'.repeat(100))).not.toThrow();
  });

  it('refuses a payload nested deeper than MAX_PAYLOAD_DEPTH up front; the deepest allowed one is delivered', async () => {
    const { c, nodes } = await formed(3, 35);
    const got = record(nodes);
    const nest = (n: number): unknown => {
      let v: unknown = 1;
      for (let i = 0; i < n; i++) v = [v];
      return v;
    };
    const n = nodes[0] as GossipNode;
    for (const depth of [MAX_PAYLOAD_DEPTH + 1, 100, 5_000]) {
      let err: unknown;
      try {
        n.sendEvent('deep', nest(depth));
      } catch (e) {
        err = e;
      }
      expect((err as GossipError).code).toBe('GOSSIP_ERR_PAYLOAD_TOO_DEEP');
      expect(() => n.query('deep', nest(depth))).toThrow(/MAX_PAYLOAD_DEPTH/);
    }
    n.sendEvent('deepest', nest(MAX_PAYLOAD_DEPTH));
    expect(await c.clock.runUntil(() => [...got.values()].every((l) => l.some((e) => e.name === 'deepest')), 5_000, 10)).toBe(true);
  });

  it('coalesced events deliver only the newest per name', async () => {
    const { c, nodes } = await formed(10, 34);
    const got = record(nodes);
    const sender = nodes[2] as GossipNode;
    for (let i = 0; i < 5; i++) sender.sendEvent('config', i, { coalesce: true });
    sender.sendEvent('other', 'x', { coalesce: true });
    await c.clock.advance(5_000);
    for (const [, list] of got) {
      expect(list.filter((e) => e.name === 'config').map((e) => e.payload)).toEqual([4]);
      expect(list.filter((e) => e.name === 'other')).toHaveLength(1);
    }
  });

  it('property: any schedule of events from any senders reaches every member exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.array(fc.record({ sender: fc.nat(7), gap: fc.integer({ min: 0, max: 300 }) }), { minLength: 1, maxLength: 12 }),
        async (seed, schedule) => {
          const c = new SimCluster({ seed, latency: [1, 20], duplicate: 0.1, reorder: true });
          try {
            const nodes = c.addMany(8);
            await c.joinAll(nodes, nodes[0] as GossipNode);
            await c.clock.runUntil(() => SimCluster.allAlive(nodes, nodes.map((x) => x.name)), 20_000, 10);
            const got = record(nodes);
            for (let i = 0; i < schedule.length; i++) {
              const s = schedule[i] as { sender: number; gap: number };
              (nodes[s.sender] as GossipNode).sendEvent('e', i);
              await c.clock.advance(s.gap);
            }
            await c.clock.advance(10_000);
            const expected = schedule.map((_, i) => i);
            for (const [, list] of got) expect(list.map((e) => e.payload as number).sort((a, b) => a - b)).toEqual(expected);
          } finally {
            await c.shutdown();
          }
        },
      ),
      { numRuns: 15 },
    );
  }, 60_000);
});
