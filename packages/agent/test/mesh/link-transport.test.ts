/**
 * The relation links' transport over the mesh: link messages ride gossip's
 * best-effort direct messages (one reliability layer: the links' own), and
 * a unit that still speaks on the reliable channel (an agent from before)
 * is answered there, so links survive a rolling upgrade.
 */
import { describe, expect, it } from 'vitest';
import { createNode, LOCAL_PROFILE, type GossipNode } from '@rhizome/gossip';
import { SimNetwork } from '@rhizome/gossip/testing';
import { LINK_ENVELOPE, MeshLinkTransport } from '../../src/mesh/link-transport';

const ack = (from: string, to: string) => ({ v: 1, vr: [1, 1] as [number, number], type: 'ack' as const, rel: 'r', from, to, epoch: 1, seq: 1 });

async function pair(seed: number): Promise<{ net: SimNetwork; a: GossipNode; b: GossipNode }> {
  const net = new SimNetwork({ seed });
  const node = (name: string) => createNode({ name, transport: net.createTransport(`sim://${name}`), clock: net.clock, random: net.forkRandom(), profile: LOCAL_PROFILE });
  const a = node('web/0');
  const b = node('lb/0');
  let joined = false;
  void b.join([a.address]).then(() => (joined = true));
  await net.clock.runUntil(() => joined && a.member('lb/0')?.status === 'alive', 10_000);
  return { net, a, b };
}

describe('MeshLinkTransport', () => {
  it('sends link messages as direct messages, with no reliable-channel traffic', async () => {
    const { net, a, b } = await pair(81);
    const ta = new MeshLinkTransport(a);
    const tb = new MeshLinkTransport(b);
    const got: unknown[] = [];
    tb.onMessage((from, m) => got.push([from, m]));
    for (let i = 0; i < 5; i++) ta.send('lb/0', ack('web/0', 'lb/0'));
    await net.clock.advance(100);
    expect(got).toEqual(Array.from({ length: 5 }, () => ['web/0', ack('web/0', 'lb/0')]));
    expect(ta.stats).toMatchObject({ sent: 5, sendFailures: 0, sentReliable: 0 });
    await Promise.all([a.shutdown(), b.shutdown()]);
  });

  it('answers a unit that speaks on the reliable channel (an older agent) there, until it sends direct', async () => {
    const { net, a, b } = await pair(82);
    const ta = new MeshLinkTransport(a);
    const onReliable: unknown[] = [];
    const onDirect: unknown[] = [];
    b.onReliable((_from, p) => onReliable.push(p));
    b.onDirect((_from, p) => onDirect.push(p));
    ta.onMessage(() => undefined);
    // lb/0 is an older agent: its link messages come on the reliable channel.
    void b.sendReliable('web/0', { k: LINK_ENVELOPE, m: ack('lb/0', 'web/0') });
    await net.clock.advance(100);
    ta.send('lb/0', ack('web/0', 'lb/0'));
    await net.clock.advance(100);
    expect(onReliable).toHaveLength(1);
    expect(onDirect).toHaveLength(0);
    expect(ta.stats.sentReliable).toBe(1);
    // Upgraded: it sends direct, and is answered direct.
    b.sendBestEffort('web/0', { k: LINK_ENVELOPE, m: ack('lb/0', 'web/0') });
    await net.clock.advance(100);
    ta.send('lb/0', ack('web/0', 'lb/0'));
    await net.clock.advance(100);
    expect(onDirect).toHaveLength(1);
    expect(ta.stats.sentReliable).toBe(1);
    await Promise.all([a.shutdown(), b.shutdown()]);
  });
});
