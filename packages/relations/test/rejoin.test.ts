/**
 * A false failure: the mesh declares a live unit failed, the receiver runs
 * `departed` (its view of the unit is dropped) and, once the unit refutes,
 * `joined` again (an empty view at version 0). The unit's data must come
 * back by state, promptly (not only at the next anti-entropy round), whatever
 * the order of departed/joined, of reachability notices, and of link epochs,
 * and whichever acks were lost on the way.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SimCluster, dstMeta, srcMeta, viewMismatches } from './harness';

let cluster: SimCluster | undefined;
afterEach(() => {
  for (const u of cluster?.units.values() ?? []) u.crash();
  cluster = undefined;
});

/** Anti-entropy far away (as in production, 30 s): what these tests check must not depend on it. */
const SLOW_SYNC = { baseMs: 40, maxMs: 640, window: 32, syncIntervalMs: 600_000 };

async function pair(seed: number) {
  const c = (cluster = new SimCluster(seed));
  c.managerOptions = { retransmit: SLOW_SYNC };
  const s0 = c.add('src/0', srcMeta);
  const d0 = c.add('dst/0', dstMeta);
  await c.relate('rel-1', [s0], 'out', [d0], 'in');
  return { c, s0, d0 };
}

const view = (c: SimCluster) => c.get('dst/0').state('in')?.relations['rel-1']?.units['src/0'];
const drained = (c: SimCluster) => viewMismatches(c).length === 0 && [...c.units.values()].every((u) => u.manager.linkStatus().every((l) => l.unacked === 0 && l.buffered === 0));
const dump = (c: SimCluster) => JSON.stringify({ view: view(c), links: [...c.units.values()].map((u) => [u.unit, u.manager.linkStatus()]), errors: c.errors });

/** Publishes `value` on src/0 and drops the ack of the message that carries it (the link then holds it unacked). */
async function publishLosingTheAck(c: SimCluster, value: number): Promise<void> {
  const d0 = c.get('dst/0');
  const before = d0.applied.length;
  await c.get('src/0').publish('out', value);
  // Step in 1 ms until dst/0 applied it; the ack is on its way (1-5 ms): cut it.
  for (let i = 0; i < 200 && d0.applied.length === before; i++) await c.tick(1, 1);
  expect(d0.applied.length, 'the message was applied').toBe(before + 1);
  c.net.partition(['src/0'], ['dst/0']);
  await c.tick(20);
}

describe('a unit that rejoins after a false failure', () => {
  it('gets its data back when the last ack was lost (departed, then joined)', async () => {
    const { c, s0, d0 } = await pair(21);
    await s0.publish('out', 1);
    expect(await c.until(() => drained(c), 5_000)).toBe(true);
    await publishLosingTheAck(c, 2);
    expect(s0.manager.linkStatus()[0]!.unacked).toBe(1);

    // The mesh: dst/0 sees src/0 fail, then come back 0.5 s later.
    await d0.manager.unitDeparted('rel-1', 'src/0');
    await c.tick(500);
    c.net.heal();
    await d0.manager.unitJoined('rel-1', 'src/0');

    expect(await c.until(() => view(c)?.version === 2 && drained(c), 5_000), dump(c)).toBe(true);
    expect(view(c)!.bag).toEqual({ value: 2, owner: 'src/0' });
    expect(c.errors).toEqual([]);
  });

  it('gets its data back when joined is committed before the heal (reachability last)', async () => {
    const { c, s0, d0 } = await pair(22);
    await publishLosingTheAck(c, 7);
    await d0.manager.unitDeparted('rel-1', 'src/0');
    await d0.manager.unitJoined('rel-1', 'src/0');
    await c.tick(300);
    c.net.heal();
    expect(await c.until(() => view(c)?.version === 1 && drained(c), 5_000), dump(c)).toBe(true);
    expect(s0.manager.linkStatus()[0]!.unacked).toBe(0);
  });

  it('gets its data back when nothing was unacked (a clean link)', async () => {
    const { c, s0, d0 } = await pair(23);
    await s0.publish('out', 3);
    expect(await c.until(() => drained(c), 5_000)).toBe(true);
    await d0.manager.unitDeparted('rel-1', 'src/0');
    await d0.manager.unitJoined('rel-1', 'src/0');
    expect(await c.until(() => view(c)?.version === 1 && drained(c), 5_000), dump(c)).toBe(true);
  });

  it('gets its data back when the sender started a new link epoch while it was departed', async () => {
    const { c, s0, d0 } = await pair(24);
    await publishLosingTheAck(c, 4);
    await d0.manager.unitDeparted('rel-1', 'src/0');
    s0.restartWithoutLinkStore();
    c.net.heal();
    await c.tick(100);
    await d0.manager.unitJoined('rel-1', 'src/0');
    expect(await c.until(() => view(c)?.version === 1 && drained(c), 5_000), dump(c)).toBe(true);
  });

  it('a stale "unreachable" (its "reachable" notice lost) does not stop acks: a message from the unit proves it is there', async () => {
    const { c, s0, d0 } = await pair(25);
    // A refuted suspicion emits no event in the mesh: the receiver would keep src/0 unreachable forever.
    d0.manager.setReachable('src/0', false);
    await s0.publish('out', 5);
    expect(await c.until(() => view(c)?.version === 1 && drained(c), 5_000), dump(c)).toBe(true);
    // And it sends to src/0 again.
    await d0.publish('in', 6);
    expect(await c.until(() => drained(c), 5_000), dump(c)).toBe(true);
    expect(s0.state('out')!.relations['rel-1']!.units['dst/0']!.version).toBe(1);
  });
});

describe('a unit that departed for good', () => {
  it('its unacked messages are marked departed (not counted), and forgetUnit drops them with its position', async () => {
    const { c, s0, d0 } = await pair(31);
    await d0.publish('in', 1);
    await s0.publish('out', 2);
    expect(await c.until(() => drained(c), 5_000)).toBe(true);
    // dst/0 goes away for good (add-unit --no-wait, then stop): src/0's next message stays unacked.
    d0.crash();
    await s0.publish('out', 3);
    await c.tick(100);
    const link = () => s0.manager.linkStatus().find((l) => l.remoteUnit === 'dst/0');
    expect(link()).toMatchObject({ unacked: 1, departed: false });
    await s0.manager.unitDeparted('rel-1', 'dst/0');
    expect(link()).toMatchObject({ unacked: 1, departed: true });

    // dst/0's link, receive position and departed entry go.
    expect(await s0.manager.forgetUnit('rel-1', 'dst/0')).toBe(true);
    expect(link()).toBeUndefined();
    expect(Object.keys(s0.kb.relations['@links'] ?? {})).not.toContain('rel-1|dst/0');
    expect(s0.state('out')!.relations['rel-1']!.departed).toEqual([]);
    // Nothing is retransmitted to it any more.
    const sent = c.net.stats.sent;
    await c.tick(3_000);
    expect(c.net.stats.sent).toBe(sent);
    expect(await s0.manager.forgetUnit('rel-1', 'dst/0')).toBe(false);
    expect(c.errors).toEqual([]);
  });

  it('forgetUnit keeps the links of a unit still joined', async () => {
    const { c, s0 } = await pair(32);
    await s0.publish('out', 1);
    expect(await c.until(() => drained(c), 5_000)).toBe(true);
    expect(await s0.manager.forgetUnit('rel-1', 'dst/0')).toBe(false);
    expect(s0.manager.linkStatus()).toHaveLength(1);
    expect(s0.manager.linkStatus()[0]!.departed).toBe(false);
  });
});
