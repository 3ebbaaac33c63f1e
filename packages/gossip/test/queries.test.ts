import { afterEach, describe, expect, it } from 'vitest';
import { GossipError } from '../src/errors';
import type { GossipNode } from '../src/node';
import { defaultQueryTimeout, LOCAL_PROFILE } from '../src/options';
import type { QueryEvent } from '../src/queries';
import { SimCluster } from './helpers/sim-cluster';

let cluster: SimCluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

async function formed(n: number, seed: number): Promise<{ c: SimCluster; nodes: GossipNode[] }> {
  const c = new SimCluster({ seed, latency: [1, 5] });
  cluster = c;
  const nodes = c.addMany(n);
  nodes.forEach((node, i) => node.setTags({ role: i % 3 === 0 ? 'db' : 'web', idx: String(i) }));
  await c.joinAll(nodes, nodes[0] as GossipNode);
  const ok = await c.clock.runUntil(
    () => SimCluster.allAlive(nodes, nodes.map((x) => x.name)) && nodes.every((a) => nodes.every((b) => a.member(b.name)?.tags['role'] !== undefined)),
    30_000,
    10,
  );
  expect(ok).toBe(true);
  return { c, nodes };
}

describe('queries', () => {
  it('collects an ack and a response from every member, each once, as they arrive', async () => {
    const { c, nodes } = await formed(15, 41);
    for (const n of nodes) n.onQuery('uptime', (q) => ({ me: n.name, asked: q.payload }));
    const requester = nodes[4] as GossipNode;
    const q = requester.query('uptime', 'please', { requestAck: true, timeout: 2_000 });
    const events: QueryEvent[] = [];
    const iterating = (async () => {
      for await (const e of q) events.push(e);
    })();
    await c.clock.advance(2_500);
    const result = await q.done;
    await iterating;
    expect([...result.acks].sort()).toEqual(nodes.map((n) => n.name).sort());
    expect(result.responses.map((r) => r.from).sort()).toEqual(nodes.map((n) => n.name).sort());
    for (const r of result.responses) expect(r.payload).toEqual({ me: r.from, asked: 'please' });
    expect(events.filter((e) => e.type === 'ack')).toHaveLength(15);
    expect(events.filter((e) => e.type === 'response')).toHaveLength(15);
    // Every member acks before it responds.
    for (const n of nodes) {
      const ackAt = events.findIndex((e) => e.type === 'ack' && e.from === n.name);
      const respAt = events.findIndex((e) => e.type === 'response' && e.from === n.name);
      expect(ackAt).toBeLessThan(respAt);
    }
  });

  it('filters by node names and by tag regexes', async () => {
    const { c, nodes } = await formed(12, 42);
    for (const n of nodes) n.onQuery('*', () => n.name);
    const r = nodes[1] as GossipNode;
    const byName = r.query('who', null, { filterNodes: ['n2', 'n5', 'nope'], timeout: 1_500 });
    const byTag = r.query('who', null, { filterTags: { role: 'db' }, timeout: 1_500 });
    const byTagRe = r.query('who', null, { filterTags: { role: 'w.b', idx: '1[01]?' }, timeout: 1_500 });
    await c.clock.advance(2_000);
    expect((await byName.done).responses.map((x) => x.from).sort()).toEqual(['n2', 'n5']);
    expect((await byTag.done).responses.map((x) => x.from).sort()).toEqual(['n0', 'n3', 'n6', 'n9']);
    // Anchored: idx 1, 10, 11 match '1[01]?', and all three have role web.
    expect((await byTagRe.done).responses.map((x) => x.from).sort()).toEqual(['n1', 'n10', 'n11']);
  });

  it('async responders answer; the query ends at its timeout with what arrived', async () => {
    const { c, nodes } = await formed(6, 43);
    for (const n of nodes) {
      n.onQuery('slow', async () => {
        await new Promise<void>((r) => c.clock.setTimeout(r, n.name === 'n3' ? 5_000 : 100));
        return n.name;
      });
    }
    const q = (nodes[0] as GossipNode).query('slow', null, { timeout: 1_000 });
    const t0 = c.clock.now();
    let doneAt = 0;
    void q.done.then(() => {
      doneAt = c.clock.now();
    });
    await c.clock.advance(8_000);
    const res = await q.done;
    expect(doneAt - t0).toBeGreaterThanOrEqual(1_000);
    expect(doneAt - t0).toBeLessThan(1_100);
    expect(res.responses.map((x) => x.from).sort()).toEqual(['n0', 'n1', 'n2', 'n4', 'n5']);
  });

  it('default timeout scales with log N like Serf', () => {
    expect(defaultQueryTimeout(LOCAL_PROFILE, 5)).toBe(50 * 16 * 1);
    expect(defaultQueryTimeout(LOCAL_PROFILE, 50)).toBe(50 * 16 * 2);
    expect(defaultQueryTimeout(LOCAL_PROFILE, 1000)).toBe(50 * 16 * 4);
  });

  it('rejects oversized queries and bad filters with clear errors', async () => {
    const { nodes } = await formed(3, 44);
    const n = nodes[0] as GossipNode;
    expect(() => n.query('big', 'x'.repeat(2_000))).toThrow(GossipError);
    expect(() => n.query('bad', null, { filterTags: { role: '(' } })).toThrow(TypeError);
  });
});
