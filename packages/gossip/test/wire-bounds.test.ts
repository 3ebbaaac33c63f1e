/**
 * Bounded wire integers (bounds.ts): an attacker's frame with an
 * incarnation or Lamport time of 2^53 - 1 is refused, not adopted; the
 * member can still refute, and the cluster keeps exchanging events, queries
 * and push-pull afterwards.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_INCARNATION_JUMP, MAX_LAMPORT, MAX_LAMPORT_JUMP, plausibleIncarnation, plausibleLamport } from '../src/bounds';
import { encodeFrames } from '../src/internal/codec';
import type { GossipNode } from '../src/index';
import type { RefusalSummary } from '../src/internal/refusals';
import { SimCluster } from './helpers/sim-cluster';

const HUGE = Number.MAX_SAFE_INTEGER; // 2^53 - 1

let cluster: SimCluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

describe('plausibility rules', () => {
  it('bound jumps over what is known, and absolute values', () => {
    expect(plausibleIncarnation(5 + MAX_INCARNATION_JUMP, 5)).toBe(true);
    expect(plausibleIncarnation(6 + MAX_INCARNATION_JUMP, 5)).toBe(false);
    expect(plausibleIncarnation(2 ** 32 - 1, undefined)).toBe(true);
    expect(plausibleIncarnation(HUGE, undefined)).toBe(false);
    expect(plausibleLamport(MAX_LAMPORT_JUMP, 0)).toBe(true);
    expect(plausibleLamport(MAX_LAMPORT_JUMP + 1, 0)).toBe(false);
    expect(plausibleLamport(MAX_LAMPORT, 0, true)).toBe(true);
    expect(plausibleLamport(MAX_LAMPORT + 1, MAX_LAMPORT, true)).toBe(false);
  });
});

describe('an attacker frame with 2^53 - 1 incarnations and Lamport times', () => {
  it('is refused everywhere, and the cluster keeps exchanging events, queries and push-pull', async () => {
    const c = new SimCluster({ seed: 515, latency: [1, 3] });
    cluster = c;
    const nodes = c.addMany(4, 'w');
    await c.joinAll(nodes, nodes[0]!);
    expect(await c.clock.runUntil(() => SimCluster.allAlive(nodes, nodes.map((n) => n.name)), 10_000, 5)).toBe(true);
    const refused: RefusalSummary[] = [];
    for (const n of nodes) n.on('frames-refused', (s) => refused.push(s));
    const failedOrLeft: string[] = [];
    for (const n of nodes) {
      n.on('member-failed', (m) => failedOrLeft.push(`${n.name} saw ${m.name} failed`));
      n.on('member-leave', (m) => failedOrLeft.push(`${n.name} saw ${m.name} leave`));
    }

    const attacker = c.net.createTransport('sim://attacker');
    attacker.setHandler({ onFrame: () => {}, onUnreachable: () => {} });
    const send = (to: GossipNode, msgs: unknown[]): void => {
      for (const f of encodeFrames({ from: 'attacker', addr: 'sim://attacker', msgs }, { maxFrameSize: 65_536 })) attacker.send(to.address, f);
    };
    const victim = nodes[1]!;
    for (const target of nodes) {
      send(target, [
        { t: 9, lt: HUGE, name: 'evil', payload: null, cc: false },
        { t: 10, lt: HUGE, id: 1, from: 'attacker', addr: 'sim://attacker', name: 'q', payload: null, filterNodes: null, filterTags: null, ack: true, timeout: 1000 },
        { t: 7, node: victim.name, inc: HUGE, from: 'attacker' },
        { t: 5, node: target.name, inc: HUGE, from: 'attacker', ev: false },
        { t: 6, node: 'ghost', addr: 'sim://ghost', inc: HUGE, tags: {} },
        { t: 8, join: false, reply: true, ans: false, members: [{ n: victim.name, a: victim.address, i: HUGE, s: 3, g: {} }], ev: HUGE, qt: HUGE, seen: null },
      ]);
    }
    await c.clock.advance(1_000);
    for (const n of nodes) {
      const d = n.stats().dropped;
      // event, query, dead, suspect (of itself), ghost alive, push-pull
      expect(d.implausible, n.name).toBe(6);
      expect(n.member('ghost')).toBeUndefined();
      expect(n.localMember().incarnation).toBeLessThan(1_000);
      expect(n.member(victim.name)?.status).toBe('alive');
    }
    expect(refused.some((s) => s.peer === 'sim://attacker' && s.reasons.GOSSIP_ERR_IMPLAUSIBLE !== undefined)).toBe(true);

    // Events, queries and push-pull still flow.
    const got = new Map<string, number>();
    for (const n of nodes) n.on('user-event', (e) => got.set(e.name, (got.get(e.name) ?? 0) + 1));
    nodes[2]!.sendEvent('after');
    expect(await c.clock.runUntil(() => got.get('after') === 4, 3_000, 5)).toBe(true);
    expect(got.get('evil')).toBeUndefined();
    nodes[3]!.onQuery('ping', () => 'pong');
    const q = nodes[0]!.query('ping', null, { timeout: 1_000 });
    await c.clock.advance(1_100);
    expect((await q.done).responses).toEqual([{ from: nodes[3]!.name, payload: 'pong' }]);
    const malformedBefore = nodes.map((n) => n.stats().dropped.malformed);
    const late = c.add('late');
    await c.joinAll([late], nodes[0]!);
    await c.clock.advance(12_000); // past a push-pull interval (LOCAL: 5 s)
    expect(SimCluster.allAlive([...nodes, late], [...nodes, late].map((n) => n.name))).toBe(true);
    expect(nodes.map((n) => n.stats().dropped.malformed)).toEqual(malformedBefore);
    expect(failedOrLeft).toEqual([]);
  });

  it('a plausible accusation is refuted at one more, and the refutation is accepted', async () => {
    const c = new SimCluster({ seed: 516, latency: [1, 3] });
    cluster = c;
    const nodes = c.addMany(3, 'r');
    await c.joinAll(nodes, nodes[0]!);
    expect(await c.clock.runUntil(() => SimCluster.allAlive(nodes, nodes.map((n) => n.name)), 10_000, 5)).toBe(true);
    const attacker = c.net.createTransport('sim://attacker');
    attacker.setHandler({ onFrame: () => {}, onUnreachable: () => {} });
    const target = nodes[1]!;
    const inc = target.localMember().incarnation + MAX_INCARNATION_JUMP;
    for (const f of encodeFrames({ from: 'attacker', addr: 'sim://attacker', msgs: [{ t: 5, node: target.name, inc, from: 'attacker', ev: false }] }, { maxFrameSize: 65_536 })) {
      attacker.send(nodes[0]!.address, f);
    }
    await c.clock.advance(3_000);
    expect(target.localMember().incarnation).toBe(inc + 1);
    for (const n of nodes) expect(n.member(target.name)).toMatchObject({ status: 'alive', incarnation: inc + 1 });
  });
});
