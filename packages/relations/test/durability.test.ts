/**
 * One durable record per relation message on each side, and "nothing is sent
 * before it is on disk", checked by packages/relations on its own simulated
 * network: commits become durable some virtual ms after the run (a slow
 * fsync), and a tap on the network checks each message as it leaves against
 * what is durable on its sender at that instant.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { MemoryLinkStore } from '../src/link-store';
import type { LinkMessage } from '../src/messages';
import { asSendRecords, outboxKey } from '../src/send-record';
import type { LinkTransport } from '../src/transport';
import { SimCluster, dstMeta, srcMeta, viewMismatches, type SimUnit } from './harness';

let cluster: SimCluster | undefined;
afterEach(() => {
  for (const u of cluster?.units.values() ?? []) u.crash();
  cluster = undefined;
});

/** Taps every unit's transport (before units are added): `check` sees each message as it leaves. */
function tap(c: SimCluster, check: (from: string, to: string, m: LinkMessage) => void): void {
  const attach = c.net.attach.bind(c.net);
  c.net.attach = (unit: string): LinkTransport => {
    const t = attach(unit);
    return { ...t, send: (to: string, m: LinkMessage) => (check(unit, to, m), t.send(to, m)) };
  };
}

const drained = (c: SimCluster, units: readonly SimUnit[]) => viewMismatches(c).length === 0 && units.every((u) => u.manager.linkStatus().every((l) => l.unacked === 0 && l.buffered === 0));

describe('durability belongs to relations', () => {
  it('a data message or sync offer leaves only once the commit that numbered it is durable; a rolled-back run sends nothing', async () => {
    const c = (cluster = new SimCluster(41));
    c.fsyncMs = 7;
    const violations: string[] = [];
    let checked = 0;
    tap(c, (unit, to, m) => {
      if (m.type !== 'data' && m.type !== 'sync') return;
      checked += 1;
      // What this unit's durable knowledge base holds for the link at this instant.
      const onDisk = asSendRecords(c.get(unit).durable?.relations[outboxKey(m.rel)])[to];
      if (m.type === 'sync') {
        if ((onDisk?.epoch ?? 0) !== m.epoch || (onDisk ? onDisk.nextSeq - 1 : 0) < m.lastSeq) violations.push(`${unit} offered epoch ${m.epoch} / ${m.lastSeq} to ${to}; on disk: ${JSON.stringify(onDisk)}`);
        return;
      }
      if (!onDisk || onDisk.epoch !== m.epoch || onDisk.nextSeq <= m.seq) violations.push(`${unit} sent ${m.epoch}/${m.seq} to ${to}; on disk: ${onDisk ? `${onDisk.epoch}/next ${onDisk.nextSeq}` : 'nothing'}`);
      if (JSON.stringify(m.bag).includes('666')) violations.push(`${unit} sent the bag of a run that rolled back`);
    });
    const units = [c.add('src/0', srcMeta), c.add('dst/0', dstMeta), c.add('dst/1', dstMeta)];
    const [s0, d0] = units as [SimUnit, SimUnit, SimUnit];
    await c.relate('rel-1', [s0], 'out', units.slice(1), 'in');
    c.net.setFaults({ loss: 0.2, duplicate: 0.2, minDelayMs: 1, maxDelayMs: 20 });
    for (let i = 1; i <= 20; i++) {
      void s0.publish('out', i);
      if (i % 3 === 0) void d0.publish('in', 100 + i);
      // Publishes, then throws: rolled back, so its bag (and no number for it) may ever leave.
      if (i % 5 === 0) {
        const payload = { relationId: 'rel-1', publish: { value: 666 }, fail: true };
        void s0.engine.submit({ kind: 'internal', name: 'scoped.out', payload }, { failFast: true }).catch(() => undefined);
      }
      await c.tick(i % 4 === 0 ? 30 : 2, 1);
    }
    c.net.setFaults({ loss: 0, duplicate: 0 });
    expect(await c.until(() => drained(c, units), 20_000), JSON.stringify(units.map((u) => [u.unit, u.manager.linkStatus()]))).toBe(true);
    expect(violations).toEqual([]);
    expect(checked).toBeGreaterThan(40);
    expect(c.errors).toEqual([]);
    expect(s0.engine.history().filter((r) => r.outcome === 'failed')).toHaveLength(4);
  });
});

describe('one durable record per relation message on each side', () => {
  it('the sender commits the publishing run, the receiver the applying run; acks and link stores write nothing', async () => {
    const c = (cluster = new SimCluster(42));
    c.fsyncMs = 2;
    let data = 0;
    tap(c, (_from, _to, m) => void (m.type === 'data' && (data += 1)));
    const s0 = c.add('src/0', srcMeta);
    const d0 = c.add('dst/0', dstMeta);
    await c.relate('rel-1', [s0], 'out', [d0], 'in');
    expect(await c.until(() => drained(c, [s0, d0]), 5_000)).toBe(true);
    // Past the first anti-entropy round (its pulls queue each side's empty bag once).
    await c.tick(1_500);
    const before = { sent: s0.commits, applied: d0.commits, data };
    const MESSAGES = 10;
    for (let i = 1; i <= MESSAGES; i++) {
      void s0.publish('out', i);
      expect(await c.until(() => d0.state('in')!.relations['rel-1']!.units['src/0']!.version === i && drained(c, [s0, d0]), 5_000, 5)).toBe(true);
    }
    expect(d0.state('in')!.relations['rel-1']!.units['src/0']!.version).toBe(MESSAGES);
    // One message per publish on the wire (no loss here), one durable record per message on each side.
    expect(data - before.data).toBe(MESSAGES);
    expect(s0.commits - before.sent).toBe(MESSAGES);
    expect(d0.commits - before.applied).toBe(MESSAGES);
    for (const u of [s0, d0]) expect((u.store as MemoryLinkStore).writes).toBe(0);
  });
});
