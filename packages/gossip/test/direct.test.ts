/**
 * Best-effort direct messages (memberlist's SendBestEffort): one frame, no
 * ack, no retransmit. What arrives is delivered as sent and only from a
 * known member; nothing is sent to an unknown, failed or left member; a
 * payload that cannot fit a frame is refused with a typed error.
 */
import { describe, expect, it } from 'vitest';
import { GossipError } from '../src/errors';
import type { GossipNode } from '../src/node';
import { simClusters } from './helpers/sim-cluster';

const { formed } = simClusters({ joinTimeoutMs: 20_000 });

describe('best-effort direct messages', () => {
  it('arrive once per copy on a perfect network, without any ack frame back', async () => {
    const { c, nodes } = await formed(3, 71);
    const [a, b] = nodes as [GossipNode, GossipNode];
    const got: unknown[] = [];
    b.onDirect((from, payload) => {
      if (from === a.name) got.push(payload);
    });
    const inBefore = a.stats().messagesIn;
    for (let i = 0; i < 20; i++) expect(a.sendBestEffort(b.name, { i })).toBe(true);
    await c.clock.advance(200);
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => ({ i })));
    // No acks: a receives at most the protocol's own traffic (probes) meanwhile, far fewer than 20 messages.
    expect(a.stats().messagesIn - inBefore).toBeLessThan(20);
  });

  it('may be lost under loss (the layer above retransmits), never delivered twice without duplication', async () => {
    const { c, nodes } = await formed(3, 72, { loss: 0.3 });
    const [a, b] = nodes as [GossipNode, GossipNode];
    const got: number[] = [];
    b.onDirect((_from, payload) => got.push(payload as number));
    for (let i = 0; i < 200; i++) a.sendBestEffort(b.name, i);
    await c.clock.advance(500);
    expect(got.length).toBeLessThan(200);
    expect(got.length).toBeGreaterThan(50);
    expect(new Set(got).size).toBe(got.length);
  });

  it('sends nothing to an unknown or failed member, and refuses a payload too large for a frame', async () => {
    const { c, nodes } = await formed(3, 73);
    const [a, b] = nodes as [GossipNode, GossipNode];
    expect(a.sendBestEffort('nobody', 1)).toBe(false);
    expect(a.sendBestEffort(a.name, 1)).toBe(false);
    expect(() => a.sendBestEffort(b.name, 'x'.repeat(2_000_000))).toThrow(GossipError);
    c.net.kill(b.address);
    await c.clock.runUntil(() => a.member(b.name)?.status === 'failed', 30_000, 50);
    expect(a.sendBestEffort(b.name, 1)).toBe(false);
  });
});
