/**
 * Re-sync by state when whole stores are lost, and what reaches the agent
 * from a misbehaving peer: malformed messages and data violating the
 * interface are refused or recorded, never thrown.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseLinkMessage } from '../src/messages';
import { LINK_SYNC_EVENT } from '../src/manager';
import { relationStatus } from '../src/status';
import { LOG, SimCluster, dstMeta, sendRecordOf, srcMeta, storeAsOlderAgent, viewMismatches } from './harness';

let cluster: SimCluster | undefined;
afterEach(() => {
  for (const u of cluster?.units.values() ?? []) u.crash();
  cluster = undefined;
});

async function pair(seed: number) {
  const c = (cluster = new SimCluster(seed));
  const s0 = c.add('src/0', srcMeta);
  const d0 = c.add('dst/0', dstMeta);
  await c.relate('rel-1', [s0], 'out', [d0], 'in');
  return { c, s0, d0 };
}

const drained = (c: SimCluster) => viewMismatches(c).length === 0 && [...c.units.values()].every((u) => u.manager.linkStatus().every((l) => l.unacked === 0));

describe('recovery from lost stores', () => {
  it('a sender that lost its link store loses nothing: its numbering and outbox are in its knowledge base', async () => {
    const { c, s0, d0 } = await pair(11);
    for (let i = 1; i <= 4; i++) await s0.publish('out', i);
    expect(await c.until(() => drained(c), 5_000)).toBe(true);
    const epoch = sendRecordOf(s0, 'rel-1', 'dst/0')!.epoch;
    expect(d0.manager.linkStatus().find((l) => l.remoteUnit === 'src/0')!.applied).toBe(4);

    s0.restartWithoutLinkStore();
    await s0.publish('out', 5);
    expect(await c.until(() => drained(c), 10_000)).toBe(true);
    expect(d0.state('in')!.relations['rel-1']!.units['src/0']!.bag).toEqual({ value: 5, owner: 'src/0' });
    // The same epoch, the next number: the receiver applied exactly one more message.
    expect(sendRecordOf(s0, 'rel-1', 'dst/0')!.epoch).toBe(epoch);
    expect(d0.manager.linkStatus().find((l) => l.remoteUnit === 'src/0')!.applied).toBe(5);
    expect(c.errors).toEqual([]);
  });

  it('an outbox an older version kept in its link store is moved into the knowledge base on start and delivered in order', async () => {
    const { c, s0, d0 } = await pair(12);
    await s0.publish('out', 1);
    expect(await c.until(() => drained(c), 5_000)).toBe(true);
    // Held back by a partition, three messages wait in the outbox; then the sender stops and its state is rewritten
    // as an agent of the previous version kept it (the send record in the link store).
    c.net.partition(['src/0'], ['dst/0']);
    for (let i = 2; i <= 4; i++) await s0.publish('out', i);
    await c.tick(100);
    s0.crash();
    storeAsOlderAgent(s0);
    expect(s0.store.get('rel-1|dst/0')!.outbox.map((m) => m.seq)).toEqual([2, 3, 4]);
    s0.restart();
    c.net.heal();
    expect(await c.until(() => drained(c) && s0.store.keys().length === 0, 10_000)).toBe(true);
    // Its numbering continued (nothing renumbered, nothing skipped) and the record lives in the knowledge base now.
    const log = (d0.fact(LOG) ?? []) as [string, string, number, number][];
    expect(log.filter(([, from]) => from === 'src/0').map((e) => e[2])).toEqual([1, 2, 3, 4]);
    expect(sendRecordOf(s0, 'rel-1', 'dst/0')!.nextSeq).toBe(5);
    expect(c.errors).toEqual([]);
  });

  it('a unit that lost its knowledge base and link store gets the current bags again, and its new bags win', async () => {
    const { c, s0, d0 } = await pair(12);
    for (let i = 1; i <= 3; i++) await s0.publish('out', i);
    await d0.publish('in', 100);
    expect(await c.until(() => drained(c), 5_000)).toBe(true);

    d0.restartFromScratch();
    const ok = await c.until(() => d0.state('in')?.relations['rel-1']?.units['src/0']?.version === 3, 10_000);
    expect(ok, JSON.stringify({ d: d0.kb.relations, dl: d0.manager.linkStatus(), sl: s0.manager.linkStatus(), e: c.errors })).toBe(true);
    expect(d0.state('in')!.relations['rel-1']!.units['src/0']!.bag).toEqual({ value: 3, owner: 'src/0' });
    // Its own bag is gone with its knowledge; the charm publishes again and the sender side converges.
    await d0.publish('in', 101);
    expect(await c.until(() => drained(c), 10_000)).toBe(true);
    expect(s0.state('out')!.relations['rel-1']!.units['dst/0']!.bag).toEqual({ value: 101, owner: 'dst/0' });
  });
});

describe('a misbehaving peer', () => {
  it('malformed messages are refused at the boundary (REL_ERR_BAD_MESSAGE, REL_ERR_PROTOCOL_VERSION) and change nothing', async () => {
    const { c, d0 } = await pair(13);
    // Past the first sync round, whose pulls queue each unit's (empty) bag for the other.
    expect(await c.until(() => drained(c), 5_000)).toBe(true);
    await c.tick(1_500);
    const rogue = c.net.attach('src/0');
    const before = d0.kb;
    const bad: unknown[] = [
      null,
      'hello',
      { v: 2, type: 'data' },
      { v: 1, type: 'data', rel: 'rel-1', from: 'src/0', to: 'dst/0', seq: 0, base: 1, version: 1, bag: {} },
      { v: 1, type: 'data', rel: 'rel-1', from: 'src/0', to: 'dst/0', epoch: 1, inc: 1, seq: 2, base: 3, version: 1, bag: {} },
      { v: 1, type: 'data', rel: 'rel-1', from: 'src/0', to: 'dst/0', seq: 1, base: 1, version: 1, bag: [] },
      { v: 1, type: 'teleport', rel: 'rel-1', from: 'src/0', to: 'dst/0' },
      { v: 1, type: 'ack', rel: 'rel-1', from: 'src/9', to: 'dst/0', epoch: 1, seq: 1 },
    ];
    for (const m of bad) rogue.send('dst/0', m as never);
    await c.tick(100);
    expect(c.errors, JSON.stringify(c.errors)).toHaveLength(bad.length);
    // (Delivery order is random: the network reorders.)
    expect(c.errors.filter((e) => /link message written in protocol v2|malformed|base 3 is above/.test(e))).toHaveLength(7);
    expect(c.errors.filter((e) => /claims to be from src\/9/.test(e))).toHaveLength(1);
    expect(d0.kb.relations).toEqual(before.relations);
    expect(d0.engine.status().state).toBe('idle');
  });

  it('data violating the interface is recorded as a relation error with its keys, not available, and never crashes the agent', async () => {
    const { c, s0, d0 } = await pair(14);
    const inc = s0.state('out')!.incarnation;
    const rogue = c.net.attach('src/0');
    rogue.send('dst/0', { v: 1, type: 'data', rel: 'rel-1', from: 'src/0', to: 'dst/0', epoch: 1, inc, seq: 1, base: 1, version: 1, bag: { value: 'lots', owner: 'src/0' } });
    await c.tick(100);
    const view = d0.state('in')!.relations['rel-1']!.units['src/0']!;
    expect(view).toMatchObject({ status: 'invalid', invalidKeys: ['value'] });
    expect(d0.engine.status().state).toBe('idle');
    expect(d0.kb.relations['in']).toBeDefined();
    const { relationsModel } = await import('../src/model');
    expect(relationsModel.evaluate(d0.kb.relations['in'], { endpoint: 'in', fact: 'available' })).toBeUndefined();
    expect(relationsModel.evaluate(d0.kb.relations['in'], { endpoint: 'in', fact: 'value', key: 'value' })).toBeUndefined();
    const [status] = relationStatus(d0.kb.relations);
    expect(status).toMatchObject({ endpoint: 'in', relationId: 'rel-1', remoteService: 'src', units: [{ unit: 'src/0', status: 'invalid', invalidKeys: ['value'] }] });
    expect(status!.errors).toHaveLength(1);
    expect(status!.errors[0]).toMatch(/in \(rel-1\): src\/0 published data that violates counter@1\.0\.0: value: .*got "lots"/);
    // The good version of the data repairs it.
    rogue.send('dst/0', { v: 1, type: 'data', rel: 'rel-1', from: 'src/0', to: 'dst/0', epoch: 1, inc, seq: 2, base: 1, version: 2, bag: { value: 3, owner: 'src/0' } });
    await c.tick(100);
    expect(d0.state('in')!.relations['rel-1']!.units['src/0']!.status).toBe('ok');
    expect(relationsModel.evaluate(d0.kb.relations['in'], { endpoint: 'in', fact: 'value', key: 'value' })).toBe(3);
  });

  it('stale and duplicate data never move a view backwards', async () => {
    const { c, s0, d0 } = await pair(15);
    const inc = s0.state('out')!.incarnation;
    const rogue = c.net.attach('src/0');
    const msg = (seq: number, version: number, value: number, i = inc, epoch = 5) => ({ v: 1 as const, type: 'data' as const, rel: 'rel-1', from: 'src/0', to: 'dst/0', epoch, inc: i, seq, base: 1, version, bag: { value, owner: 'src/0' } });
    rogue.send('dst/0', msg(2, 5, 50));
    rogue.send('dst/0', msg(1, 7, 70));
    rogue.send('dst/0', msg(1, 7, 70));
    await c.tick(100);
    const view = d0.state('in')!.relations['rel-1']!.units['src/0']!;
    expect(view).toMatchObject({ version: 7, bag: { value: 70 } });
    expect(d0.applied.map((a) => [a.seq, a.keys.length])).toEqual([
      [1, 2],
      [2, 0],
    ]);
    expect(d0.engine.history().filter((r) => r.eventLabel === LINK_SYNC_EVENT)).toHaveLength(1);
    // An older link epoch is superseded, whatever its numbers; a newer one starts numbering afresh.
    rogue.send('dst/0', msg(3, 99, 990, inc, 4));
    await c.tick(100);
    expect(d0.state('in')!.relations['rel-1']!.units['src/0']!).toMatchObject({ version: 7, bag: { value: 70 } });
    // A newer incarnation of the sender's endpoint (it lost its knowledge base) orders after every older version.
    rogue.send('dst/0', msg(1, 1, 11, inc + 1, 6));
    await c.tick(100);
    expect(d0.state('in')!.relations['rel-1']!.units['src/0']!).toMatchObject({ incarnation: inc + 1, version: 1, bag: { value: 11 } });
    expect(d0.manager.linkStatus().find((l) => l.remoteUnit === 'src/0')?.applied).toBe(1);
  });
});

describe('bounded wire integers', () => {
  it('an epoch, incarnation or counter jumping implausibly far ahead is refused, not adopted: genuine messages still apply', async () => {
    const { c, s0, d0 } = await pair(16);
    await s0.publish('out', 1);
    expect(await c.until(() => drained(c), 5_000)).toBe(true);
    const inc = s0.state('out')!.incarnation;
    const pos = d0.manager.linkStatus()[0]!;
    const epoch = sendRecordOf(s0, 'rel-1', 'dst/0')!.epoch;
    const rogue = c.net.attach('src/0');
    const msg = (over: Record<string, number>) => ({ v: 1 as const, type: 'data' as const, rel: 'rel-1', from: 'src/0', to: 'dst/0', epoch, inc, seq: pos.applied + 1, base: pos.applied + 1, version: 9, bag: { value: 666, owner: 'src/0' }, ...over });
    const farFuture = Date.now() + 2 * 24 * 3_600_000;
    rogue.send('dst/0', msg({ epoch: farFuture }));
    rogue.send('dst/0', msg({ inc: farFuture }));
    rogue.send('dst/0', msg({ version: 2 ** 40 }));
    rogue.send('dst/0', msg({ seq: 2 ** 40, base: 2 ** 40 }));
    await c.tick(100);
    expect(c.errors.filter((e) => /refused: .*(ahead of this host's clock|jumps)/.test(e)), JSON.stringify(c.errors)).toHaveLength(4);
    expect(d0.state('in')!.relations['rel-1']!.units['src/0']!).toMatchObject({ version: 1, bag: { value: 1 } });
    expect(d0.manager.linkStatus()[0]!.applied).toBe(pos.applied);
    // Beyond what the wire can count on exactly: refused at the boundary.
    expect(() => parseLinkMessage(msg({ version: 2 ** 53 }))).toThrow(/REL_ERR_BAD_MESSAGE|version/);
    expect(() => parseLinkMessage({ v: 1, type: 'ack', rel: 'r', from: 'a/0', to: 'b/0', epoch: 2 ** 60, seq: 1 })).toThrow(/epoch/);
    // The genuine sender goes on as if nothing happened (restarted: the rogue took its place on the network).
    s0.restart();
    await c.settle();
    await s0.publish('out', 2);
    expect(await c.until(() => drained(c), 5_000)).toBe(true);
    expect(d0.state('in')!.relations['rel-1']!.units['src/0']!).toMatchObject({ version: 2, bag: { value: 2 } });
  });
});

describe('parseLinkMessage', () => {
  it('accepts each message type and refuses oversized bags', () => {
    for (const m of [
      { v: 1, type: 'data', rel: 'r', from: 'a/0', to: 'b/0', epoch: 9, inc: 5, seq: 1, base: 1, version: 0, bag: {} },
      { v: 1, type: 'ack', rel: 'r', from: 'a/0', to: 'b/0', epoch: 9, seq: 0 },
      { v: 1, type: 'sync', rel: 'r', from: 'a/0', to: 'b/0', epoch: 9, inc: 5, version: 1, appVersion: 0, lastSeq: 3 },
      { v: 1, type: 'pull', rel: 'r', from: 'a/0', to: 'b/0', epoch: 9, expect: 1, viewInc: 5, version: 0 },
    ]) {
      expect(parseLinkMessage(m)).toEqual(m);
    }
    expect(() => parseLinkMessage({ v: 1, type: 'data', rel: 'r', from: 'a/0', to: 'b/0', epoch: 9, inc: 5, seq: 1, base: 1, version: 0, bag: { big: 'x'.repeat(300_000) } })).toThrow(/limit is/);
  });
});
