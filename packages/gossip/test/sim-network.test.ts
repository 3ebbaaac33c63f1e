import { describe, expect, it } from 'vitest';
import { SimNetwork } from '../src/sim-network';

describe('SimNetwork', () => {
  function pair(net: SimNetwork) {
    const a = net.createTransport('a');
    const b = net.createTransport('b');
    const got: string[] = [];
    const unreachable: string[] = [];
    a.setHandler({ onFrame: () => {}, onUnreachable: (to, why) => unreachable.push(`${to}:${why}`) });
    b.setHandler({ onFrame: (f, remote) => got.push(`${remote}:${new TextDecoder().decode(f)}`), onUnreachable: () => {} });
    return { a, b, got, unreachable };
  }
  const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

  it('delivers FIFO per link after the latency', async () => {
    const net = new SimNetwork({ seed: 1, latency: [5, 50] });
    const { a, got } = pair(net);
    for (let i = 0; i < 20; i++) a.send('b', bytes(String(i)));
    await net.clock.advance(4);
    expect(got).toEqual([]);
    await net.clock.advance(100);
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `a:${i}`));
  });

  it('kill makes the sender see refused; silence drops without a word; partitions drop until healed', async () => {
    const net = new SimNetwork({ seed: 2, latency: 2 });
    const { a, got, unreachable } = pair(net);
    net.silence('b');
    a.send('b', bytes('s'));
    await net.clock.advance(20);
    expect(got).toEqual([]);
    expect(unreachable).toEqual([]);
    net.unsilence('b');
    net.partition(['a'], ['b']);
    a.send('b', bytes('p'));
    await net.clock.advance(20);
    expect(got).toEqual([]);
    net.heal();
    a.send('b', bytes('h'));
    await net.clock.advance(20);
    expect(got).toEqual(['a:h']);
    net.kill('b');
    a.send('b', bytes('k'));
    await net.clock.advance(20);
    // a had a connection to b (it sent the 'h' frame): reset first, then the new frame is refused.
    expect(unreachable).toEqual(['b:reset', 'b:refused']);
    expect(got).toEqual(['a:h']);
  });

  it('is deterministic for a seed (loss and duplication)', async () => {
    const run = async (seed: number): Promise<string[]> => {
      const net = new SimNetwork({ seed, latency: [1, 30], loss: 0.3, duplicate: 0.3, reorder: true });
      const { a, got } = pair(net);
      for (let i = 0; i < 50; i++) a.send('b', bytes(String(i)));
      await net.clock.advance(100);
      return got;
    };
    const x = await run(9);
    expect(await run(9)).toEqual(x);
    expect(x.length).toBeGreaterThan(20);
    expect(x.length).toBeLessThan(80);
  });
});

describe('SimNetwork, trusted (messages as objects, never encoded)', () => {
  it('runs the protocol exactly as the encoded network does, without encoding anything', async () => {
    const { createNode } = await import('../src/node');
    const { LOCAL_PROFILE } = await import('../src/options');
    const run = async (trusted: boolean) => {
      const net = new SimNetwork({ seed: 808, latency: [1, 5], trusted });
      const nodes = Array.from({ length: 30 }, (_, i) =>
        createNode({ name: `t${i}`, transport: net.createTransport(`sim://t${i}`), clock: net.clock, random: net.forkRandom(), profile: LOCAL_PROFILE }),
      );
      const joins: string[] = [];
      for (const n of nodes) n.on('member-join', (m) => joins.push(`${n.name}<${m.name}`));
      for (const n of nodes.slice(1)) void n.join([nodes[0]!.address]);
      let got = 0;
      for (const n of nodes) n.on('user-event', () => got++);
      await net.clock.advance(2_000);
      nodes[7]!.sendEvent('e', { x: 1 });
      await net.clock.advance(3_000);
      const known = nodes.map((n) => n.members().filter((m) => m.status === 'alive').length);
      await Promise.all(nodes.map((n) => n.shutdown()));
      return { joins, got, known, frames: net.stats.framesSent, bytes: net.stats.bytesSent };
    };
    const encoded = await run(false);
    const trusted = await run(true);
    expect(trusted.known).toEqual(new Array(30).fill(30));
    expect(trusted.got).toBe(30);
    expect(trusted.bytes).toBe(0);
    expect(encoded.bytes).toBeGreaterThan(0);
    // Same seed, same decisions: the same joins in the same order, the same number of frames.
    expect(trusted.joins).toEqual(encoded.joins);
    expect(trusted.frames).toBe(encoded.frames);
  });
});
