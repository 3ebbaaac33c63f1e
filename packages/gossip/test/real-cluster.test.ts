/**
 * Real sockets, real processes: four gossip nodes, each its own Node.js
 * process on 127.0.0.1 (fixtures/gossip-node.ts, LOCAL profile), join,
 * exchange events and queries, detect a SIGKILLed member, see a graceful
 * leave as `left` (never `failed`), and take members back when they rejoin.
 * The steps share one cluster and run in order.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { NodeProc, killAllNodes } from './fixtures/node-proc';
import type { MemberView } from './fixtures/node-proc';
import { until } from '@rhizome/test-support';

const nodes = new Map<string, NodeProc>();
const get = (n: string): NodeProc => nodes.get(n)!;

async function views(names: string[]): Promise<Map<string, MemberView[]>> {
  const out = new Map<string, MemberView[]>();
  await Promise.all(names.map(async (n) => out.set(n, await get(n).members())));
  return out;
}

/** Waits until every observer sees `target` with `status`. */
async function allSee(observers: string[], target: string, status: MemberView['status'], timeoutMs = 20_000): Promise<void> {
  await until(`${observers.join(',')} to see ${target} ${status}`, async () => {
      const v = await views(observers);
      return observers.every((o) => v.get(o)!.find((m) => m.name === target)?.status === status);
    }, { timeoutMs: timeoutMs, intervalMs: 50 });
}

const memberLines = (n: string, event: string, node: string) =>
  get(n).lines.filter((l) => l.type === 'member' && l['event'] === event && l['node'] === node);

beforeAll(async () => {
  const a = await NodeProc.start({ name: 'a', tags: { role: 'db' } });
  nodes.set('a', a);
  const rest = await Promise.all(
    (
      [
        ['b', 'db'],
        ['c', 'web'],
        ['d', 'web'],
      ] as const
    ).map(([name, role]) => NodeProc.start({ name, tags: { role }, seeds: [a.address] })),
  );
  for (const n of rest) nodes.set(n.name, n);
}, 60_000);

afterAll(async () => {
  await killAllNodes();
});

describe('real cluster over WebSocket (4 processes)', () => {
  it('joins: every node sees all four alive', async () => {
    for (const n of ['a', 'b', 'c', 'd']) {
      for (const t of ['a', 'b', 'c', 'd']) await allSee([n], t, 'alive');
    }
    const v = await views(['a', 'b', 'c', 'd']);
    for (const list of v.values()) {
      expect(list.map((m) => m.name).sort()).toEqual(['a', 'b', 'c', 'd']);
      expect(list.find((m) => m.name === 'c')!.tags).toEqual({ role: 'web' });
    }
  });

  it('delivers a user event to every member exactly once', async () => {
    await get('b').request({ cmd: 'sendEvent', name: 'deploy', payload: { version: 7 } });
    const got = (n: string) => get(n).lines.filter((l) => l.type === 'user-event' && l['name'] === 'deploy');
    await until('event everywhere', () => ['a', 'b', 'c', 'd'].every((n) => got(n).length >= 1));
    for (const n of ['a', 'b', 'c', 'd']) expect(got(n)[0]!['payload']).toEqual({ version: 7 });
    // Let retransmissions settle, then check there were no duplicates.
    await get('a').request({ cmd: 'sendEvent', name: 'marker', payload: null });
    await until('marker everywhere', () => ['a', 'b', 'c', 'd'].every((n) => get(n).lines.some((l) => l.type === 'user-event' && l['name'] === 'marker')));
    await new Promise((r) => setTimeout(r, 500));
    for (const n of ['a', 'b', 'c', 'd']) expect(got(n)).toHaveLength(1);
  });

  it('answers queries, with acks, and honours tag filters', async () => {
    const all = await get('c').request<{ acks: string[]; responses: { from: string; payload: { name: string } }[] }>({
      cmd: 'query',
      name: 'whoami',
      options: { requestAck: true, timeout: 2_000 },
    });
    expect([...all.acks].sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(all.responses.map((r) => r.from).sort()).toEqual(['a', 'b', 'c', 'd']);
    for (const r of all.responses) expect(r.payload.name).toBe(r.from);

    const dbs = await get('d').request<{ responses: { from: string }[] }>({
      cmd: 'query',
      name: 'whoami',
      options: { filterTags: { role: 'db' }, timeout: 2_000 },
    });
    expect(dbs.responses.map((r) => r.from).sort()).toEqual(['a', 'b']);
  });

  it('declares a SIGKILLed member failed on every survivor', async () => {
    const before = (await get('a').members()).find((m) => m.name === 'd')!;
    expect(before.status).toBe('alive');
    await get('d').kill('SIGKILL');
    await allSee(['a', 'b', 'c'], 'd', 'failed');
    // Nobody else was suspected into failure along the way.
    const v = await views(['a', 'b', 'c']);
    for (const list of v.values()) {
      for (const n of ['a', 'b', 'c']) expect(list.find((m) => m.name === n)!.status).toBe('alive');
    }
  });

  it('sees a graceful leave as left, never as failed', async () => {
    await get('c').request({ cmd: 'leave' });
    await allSee(['a', 'b'], 'c', 'left');
    for (const n of ['a', 'b']) expect(memberLines(n, 'member-failed', 'c')).toEqual([]);
  });

  it('takes members back when they rejoin: a restarted process and a node that had left', async () => {
    const oldInc = (await get('a').members()).find((m) => m.name === 'd')!.incarnation;
    // d comes back as a new process at the same address: it must outbid its own failed record.
    const d = await NodeProc.start({ name: 'd', port: get('d').port, tags: { role: 'web' }, seeds: [get('a').address] });
    nodes.set('d', d);
    // c, which had left but kept running, joins again.
    await get('c').request({ cmd: 'join', seeds: [get('b').address] });
    for (const t of ['c', 'd']) await allSee(['a', 'b', 'c', 'd'], t, 'alive');
    const v = await views(['a', 'b']);
    for (const list of v.values()) {
      const dm = list.find((m) => m.name === 'd')!;
      expect(dm.address).toBe(d.address);
      expect(dm.incarnation).toBeGreaterThan(oldInc);
    }
    // Through all of it, the nodes that never stopped were never declared failed.
    for (const n of ['a', 'b', 'c']) {
      for (const t of ['a', 'b']) expect(memberLines(n, 'member-failed', t)).toEqual([]);
    }
  });
});
