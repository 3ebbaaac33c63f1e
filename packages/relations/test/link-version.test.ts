/**
 * Link protocol versions as ranges (memberlist's ProtocolVersionMin/Max):
 * every message says which version it is written in and which its sender
 * reads; a peer one version ahead or behind whose range overlaps is
 * understood (both write the highest common version once they heard each
 * other), one without a common version is refused with a reason saying
 * which side to upgrade, and nothing is applied from it.
 */
import { describe, expect, it } from 'vitest';
import { RelationError } from '../src/errors';
import { linkVersionFor, parseLinkMessage, versionRefusal } from '../src/messages';
import { dstMeta, SimCluster, srcMeta, viewMismatches } from './harness';

const ack = { type: 'ack', rel: 'r', from: 'a/0', to: 'b/0', epoch: 1, seq: 1 } as const;

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RelationError);
    expect((e as RelationError).code).toBe('REL_ERR_PROTOCOL_VERSION');
    return (e as Error).message;
  }
  throw new Error('not refused');
}

describe('link protocol version ranges', () => {
  it('writes the highest version both read; its own min to a peer not heard yet; nothing without overlap', () => {
    expect(linkVersionFor({ min: 1, max: 2 }, undefined)).toBe(1);
    expect(linkVersionFor({ min: 1, max: 2 }, { min: 1, max: 1 })).toBe(1);
    expect(linkVersionFor({ min: 1, max: 2 }, { min: 2, max: 3 })).toBe(2);
    expect(linkVersionFor({ min: 2, max: 3 }, { min: 1, max: 2 })).toBe(2);
    expect(linkVersionFor({ min: 2, max: 3 }, { min: 1, max: 1 })).toBeUndefined();
    expect(versionRefusal(2, { min: 1, max: 2 }, { min: 1, max: 2 })).toBeUndefined();
  });

  it('reads a message from a peer one version behind or ahead, and from agents before ranges', () => {
    // Before ranges: `v: 1` alone.
    expect(parseLinkMessage({ v: 1, ...ack })).toEqual({ v: 1, ...ack });
    // A peer one version ahead that has not heard from us writes its min, which we read.
    expect(parseLinkMessage({ v: 1, vr: [1, 2], ...ack })).toEqual({ v: 1, vr: [1, 2], ...ack });
    // A peer one version behind, read by an agent of the next version that still reads it.
    expect(parseLinkMessage({ v: 1, vr: [1, 1], ...ack }, { min: 1, max: 2 })).toMatchObject({ v: 1 });
  });

  it('refuses what it cannot read with a reason naming the side to upgrade', () => {
    expect(refusal(() => parseLinkMessage({ v: 2, vr: [1, 2], ...ack }, { min: 1, max: 1 }))).toMatch(/protocol v2 by a peer that reads v1-v2; this agent reads v1: the peer writes a version both read once it hears/);
    expect(refusal(() => parseLinkMessage({ v: 1, vr: [1, 1], ...ack }, { min: 2, max: 3 }))).toMatch(/reads v1; this agent reads v2-v3: upgrade the peer's agent/);
    expect(refusal(() => parseLinkMessage({ v: 3, vr: [3, 3], ...ack }, { min: 1, max: 2 }))).toMatch(/upgrade this agent/);
    expect(refusal(() => parseLinkMessage({ v: 2, ...ack }))).toMatch(/upgrade this agent/);
    // Nonsense claims are refused too: a version outside the sender's own range, a reversed range, a huge number.
    expect(refusal(() => parseLinkMessage({ v: 3, vr: [1, 2], ...ack }))).toMatch(/within the range the sender claims/);
    expect(refusal(() => parseLinkMessage({ v: 1, vr: [2, 1], ...ack }))).toMatch(/within the range/);
    expect(refusal(() => parseLinkMessage({ v: 2 ** 40, ...ack }))).toMatch(/an integer 1-255/);
  });

  it('a rolling upgrade: units reading v1-v2 and v2-v3 converge writing v2', async () => {
    const c = new SimCluster(61);
    c.unitManagerOptions.set('src/0', { linkProtocol: { min: 1, max: 2 } });
    c.unitManagerOptions.set('dst/0', { linkProtocol: { min: 2, max: 3 } });
    const s0 = c.add('src/0', srcMeta);
    const d0 = c.add('dst/0', dstMeta);
    await c.relate('rel-1', [s0], 'out', [d0], 'in');
    await s0.publish('out', 5);
    expect(await c.until(() => d0.state('in')?.relations['rel-1']?.units['src/0']?.version === 1 && s0.manager.linkStatus().every((l) => l.unacked === 0), 20_000)).toBe(true);
    await d0.publish('in', 6);
    expect(await c.until(() => viewMismatches(c).length === 0 && d0.manager.linkStatus().every((l) => l.unacked === 0), 20_000)).toBe(true);
    expect(d0.fact('log.links')).toEqual([['rel-1', 'src/0', 1, 1]]);
    // Only the transient refusals before the two had heard each other.
    expect(c.errors.every((e) => /both read once it hears/.test(e)), c.errors.join('\n')).toBe(true);
  });

  it('units without a common version exchange nothing and say which side to upgrade', async () => {
    const c = new SimCluster(62);
    c.unitManagerOptions.set('src/0', { linkProtocol: { min: 1, max: 1 } });
    c.unitManagerOptions.set('dst/0', { linkProtocol: { min: 2, max: 2 } });
    const s0 = c.add('src/0', srcMeta);
    const d0 = c.add('dst/0', dstMeta);
    await c.relate('rel-1', [s0], 'out', [d0], 'in');
    await s0.publish('out', 5);
    await c.tick(3_000, 50);
    expect(d0.state('in')?.relations['rel-1']?.units['src/0']?.version).toBe(0);
    expect(d0.fact('log.links')).toBeUndefined();
    expect(c.errors.some((e) => e.startsWith('dst/0:') && /upgrade the peer's agent/.test(e))).toBe(true);
    expect(c.errors.some((e) => e.startsWith('src/0:') && /upgrade this agent/.test(e))).toBe(true);
    // Reported once per peer, not once per retransmission.
    expect(c.errors.filter((e) => /no common version/.test(e)).length).toBeLessThanOrEqual(2);
  });
});
