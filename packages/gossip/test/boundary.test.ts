import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrames } from '../src/internal/codec';
import type { GossipLogger } from '../src/logger';
import type { GossipNode } from '../src/node';
import { SimCluster } from './helpers/sim-cluster';

let cluster: SimCluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

describe('untrusted input at the node boundary', () => {
  it('drops each kind of bad frame with its counter, logs one summary per peer per interval, and keeps working', async () => {
    const c = new SimCluster({ seed: 61, latency: 1 });
    cluster = c;
    const lines: string[] = [];
    const logger: GossipLogger = { debug: () => {}, info: () => {}, error: (_o, m) => lines.push(m), warn: (_o, m) => lines.push(m) };
    const target = c.add('target', { logger });
    const peer = c.add('peer');
    const join = peer.join([target.address]);
    await c.clock.advance(1_000);
    await join;
    const attacker = c.net.createTransport('sim://attacker');
    attacker.setHandler({ onFrame: () => {}, onUnreachable: () => {} });
    const frame = (msgs: unknown[], from = 'attacker', addr = 'sim://attacker'): Uint8Array =>
      encodeFrames({ from, addr, msgs }, { maxFrameSize: 65_536 })[0] as Uint8Array;
    const packr = new Packr({ useRecords: false });
    const raw = (v: unknown): Uint8Array => Uint8Array.from([0, ...packr.pack(v)]);

    attacker.send(target.address, frame([{ t: 99 }]));
    attacker.send(target.address, frame([{ t: 1, seq: -4, target: 'target' }]));
    attacker.send(target.address, raw({ v: 42, from: 'attacker', addr: 'sim://attacker', msgs: [] }));
    attacker.send(target.address, Uint8Array.from([0, 0xc1, 0xff]));
    attacker.send(target.address, new Uint8Array(70_000));
    attacker.send(target.address, frame([{ t: 7, node: 'peer', inc: 99, from: 'peer' }], 'peer', 'sim://attacker'));
    attacker.send(target.address, frame([{ t: 3, seq: 1 }, { t: 99 }, { t: 1, seq: 5, target: 'target' }]));
    await c.clock.advance(500);

    const d = target.stats().dropped;
    expect(d.unknownType).toBe(2);
    expect(d.malformed).toBe(2); // bad seq field, and bad msgpack
    expect(d.version).toBe(1);
    expect(d.tooLarge).toBe(1);
    expect(d.spoofed).toBe(1);
    // The first refusal is logged at once; the other six wait for the end of the interval, as one line.
    expect(lines.filter((l) => l.startsWith('gossip: refused'))).toEqual([expect.stringMatching(/^gossip: refused 1 frame\(s\) from sim:\/\/attacker: 1× GOSSIP_ERR_/)]);
    // The spoofed leave was not believed; the valid ping in the mixed frame was answered.
    expect(target.member('peer')?.status).toBe('alive');
    expect(c.net.sentBy(target.address).frames).toBeGreaterThan(0);
    await c.clock.advance(10_000);
    const summaries = lines.filter((l) => l.startsWith('gossip: refused'));
    expect(summaries).toHaveLength(2);
    expect(summaries[1]).toMatch(/^gossip: refused 6 frame\(s\) from sim:\/\/attacker: .*GOSSIP_ERR_SPOOFED_SENDER/);
    expect(target.member('peer')?.status).toBe('alive');
    expect((peer as GossipNode).member('target')?.status).toBe('alive');
  });
});
