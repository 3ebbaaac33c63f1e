/**
 * "Nothing is sent before it is on disk", checked by packages/relations on
 * its own simulated network: every link store here is a slow disk (a put
 * becomes durable only when a flush completes, some virtual ms later), and
 * a tap on the network checks each message as it leaves against what is
 * durable in the sender's store at that instant.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Clock } from '@rhizome/clock';
import { MemoryLinkStore, type LinkRecord, type LinkStore } from '../src/link-store';
import type { LinkMessage } from '../src/messages';
import type { LinkTransport } from '../src/transport';
import { SimCluster, dstMeta, srcMeta, viewMismatches } from './harness';

/** A link store whose changes reach its "disk" only when a flush completes, `ms` of virtual time after it was asked for. */
class SlowDiskLinkStore implements LinkStore {
  readonly live = new MemoryLinkStore();
  readonly disk = new Map<string, LinkRecord>();
  private pending: Array<[string, LinkRecord | undefined]> = [];
  flushes = 0;

  constructor(
    private readonly clock: Clock,
    private readonly ms: number,
  ) {}

  get(id: string): LinkRecord | undefined {
    return this.live.get(id);
  }
  put(id: string, record: LinkRecord): void {
    this.live.put(id, record);
    this.pending.push([id, structuredClone(record)]);
  }
  delete(id: string): void {
    this.live.delete(id);
    this.pending.push([id, undefined]);
  }
  keys(): string[] {
    return this.live.keys();
  }
  flush(): Promise<void> {
    this.flushes += 1;
    const batch = this.pending.splice(0);
    // Same delay for every flush: they complete in call order, as an append-only log's do.
    return new Promise((resolve) =>
      this.clock.setTimeout(() => {
        for (const [id, r] of batch) if (r) this.disk.set(id, r);
        else this.disk.delete(id);
        resolve();
      }, this.ms),
    );
  }
}

let cluster: SimCluster | undefined;
afterEach(() => {
  for (const u of cluster?.units.values() ?? []) u.crash();
  cluster = undefined;
});

describe('durability belongs to relations', () => {
  it('a data message or sync offer leaves only once the link record it comes from is on disk', async () => {
    const c = (cluster = new SimCluster(41));
    c.fsyncMs = 3;
    const stores = new Map<string, SlowDiskLinkStore>();
    const violations: string[] = [];
    let checked = 0;
    // Tap every unit's transport: check what leaves against the sender's disk at that instant.
    const attach = c.net.attach.bind(c.net);
    c.net.attach = (unit: string): LinkTransport => {
      const t = attach(unit);
      const send = (to: string, m: LinkMessage): void => {
        if (m.type === 'data' || m.type === 'sync') {
          checked += 1;
          const onDisk = stores.get(unit)?.disk.get(`${m.rel}|${to}`);
          if (!onDisk || onDisk.epoch !== m.epoch) violations.push(`${unit} sent ${m.type} of epoch ${m.epoch} to ${to}; on disk: ${onDisk ? `epoch ${onDisk.epoch}` : 'nothing'}`);
          else if (m.type === 'data' && onDisk.nextSeq <= m.seq) violations.push(`${unit} sent seq ${m.seq} to ${to}; on disk the next seq is still ${onDisk.nextSeq}`);
        }
        t.send(to, m);
      };
      return { ...t, send };
    };
    const units = [c.add('src/0', srcMeta), c.add('dst/0', dstMeta), c.add('dst/1', dstMeta)];
    for (const u of units) {
      const store = new SlowDiskLinkStore(c.clock, 7);
      stores.set(u.unit, store);
      u.store = store;
      u.restart();
    }
    const [s0, d0, d1] = units as [typeof units[0], typeof units[0], typeof units[0]];
    await c.relate('rel-1', [s0], 'out', [d0, d1], 'in');
    c.net.setFaults({ loss: 0.2, duplicate: 0.2, minDelayMs: 1, maxDelayMs: 20 });
    for (let i = 1; i <= 20; i++) {
      void s0.publish('out', i);
      if (i % 3 === 0) void d0.publish('in', 100 + i);
      await c.tick(i % 4 === 0 ? 30 : 2, 1);
    }
    c.net.setFaults({ loss: 0, duplicate: 0 });
    const drained = () => viewMismatches(c).length === 0 && units.every((u) => u.manager.linkStatus().every((l) => l.unacked === 0 && l.buffered === 0));
    expect(await c.until(drained, 20_000), JSON.stringify(units.map((u) => [u.unit, u.manager.linkStatus()]))).toBe(true);
    expect(violations).toEqual([]);
    expect(checked).toBeGreaterThan(40);
    expect(stores.get('src/0')!.flushes).toBeGreaterThan(0);
    expect(c.errors).toEqual([]);
  });
});

describe('one durable record per applied message on the receiver', () => {
  it('the receiver buffers in memory: applying a message writes nothing to its link store (the run commit is the record)', async () => {
    const c = (cluster = new SimCluster(42));
    const s0 = c.add('src/0', srcMeta);
    const d0 = c.add('dst/0', dstMeta);
    await c.relate('rel-1', [s0], 'out', [d0], 'in');
    const drained = () => viewMismatches(c).length === 0 && [...c.units.values()].every((u) => u.manager.linkStatus().every((l) => l.unacked === 0 && l.buffered === 0));
    expect(await c.until(drained, 5_000)).toBe(true);
    // Past the first anti-entropy round, which creates the receiver's own (sending) link record.
    await c.tick(1_500);
    const store = d0.store as MemoryLinkStore;
    const writes = store.writes;
    const commits = d0.engine.history().length;
    for (let i = 1; i <= 10; i++) await s0.publish('out', i);
    expect(await c.until(drained, 5_000)).toBe(true);
    expect(d0.state('in')!.relations['rel-1']!.units['src/0']!.version).toBe(10);
    expect(store.writes).toBe(writes);
    expect(d0.engine.history().length - commits).toBe(10);
  });
});
