/**
 * Cluster labels and refused-frame summaries: frames carry the cluster's
 * label, which is checked before anything else (before decryption); two
 * clusters with different labels on one network never merge; refused frames
 * are reported as one summary per peer per interval, on both sides of a
 * keyring mismatch.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrames, FrameError } from '../src/internal/codec';
import { createNode, Keyring, LOCAL_PROFILE } from '../src/index';
import type { GossipNode } from '../src/index';
import type { RefusalSummary } from '../src/internal/refusals';
import { peerHost } from '../src/internal/refusals';
import { createWsTransport } from '../src/ws-transport';
import { SimCluster } from './helpers/sim-cluster';
import { until } from '@rhizome/test-support';

const env = { from: 'a', addr: 'sim://a', msgs: [{ t: 1, x: 'hello' }] };
const max = 64 * 1024;

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof FrameError) return err.code;
    throw err;
  }
  return 'accepted';
}

describe('cluster label in the frame codec', () => {
  it('round-trips with the same label, plaintext and encrypted', () => {
    const keyring = new Keyring(Keyring.generateKey());
    for (const k of [undefined, keyring]) {
      const [f] = encodeFrames(env, { maxFrameSize: max, keyring: k, label: 'prod-east' });
      expect(decodeFrame(f!, { maxFrameSize: max, keyring: k, label: 'prod-east' }).msgs).toEqual(env.msgs);
    }
  });

  it('refuses another label, a missing label and an unexpected label, before decryption', () => {
    const keyring = new Keyring(Keyring.generateKey());
    const other = new Keyring(Keyring.generateKey());
    const [labelled] = encodeFrames(env, { maxFrameSize: max, keyring, label: 'blue' });
    const [unlabelled] = encodeFrames(env, { maxFrameSize: max, keyring });
    // Another key AND another label: the label is what is reported (checked first).
    expect(refusal(() => decodeFrame(labelled!, { maxFrameSize: max, keyring: other, label: 'green' }))).toBe('GOSSIP_ERR_LABEL');
    expect(refusal(() => decodeFrame(labelled!, { maxFrameSize: max, keyring }))).toBe('GOSSIP_ERR_LABEL');
    expect(refusal(() => decodeFrame(unlabelled!, { maxFrameSize: max, keyring, label: 'blue' }))).toBe('GOSSIP_ERR_LABEL');
    // Plaintext too.
    const [plain] = encodeFrames(env, { maxFrameSize: max, label: 'blue' });
    expect(refusal(() => decodeFrame(plain!, { maxFrameSize: max, label: 'green' }))).toBe('GOSSIP_ERR_LABEL');
    expect(refusal(() => decodeFrame(plain!, { maxFrameSize: max }))).toBe('GOSSIP_ERR_LABEL');
  });

  it('authenticates the label: swapping or stripping it on an encrypted frame fails to decrypt', () => {
    const keyring = new Keyring(Keyring.generateKey());
    const [f] = encodeFrames(env, { maxFrameSize: max, keyring, label: 'blue' });
    const frame = f!;
    // Same length, other label bytes ("blue" -> "blux").
    const swapped = frame.slice();
    swapped[5] = 'x'.charCodeAt(0);
    expect(refusal(() => decodeFrame(swapped, { maxFrameSize: max, keyring, label: 'blux' }))).toBe('GOSSIP_ERR_DECRYPT');
    const stripped = frame.slice(2 + 'blue'.length);
    expect(refusal(() => decodeFrame(stripped, { maxFrameSize: max, keyring }))).toBe('GOSSIP_ERR_DECRYPT');
  });

  it('rejects bad labels at construction and malformed label headers', () => {
    const transport = { address: 'x', send() {}, setHandler() {}, close: async () => {} };
    expect(() => createNode({ name: 'n', transport, label: 'x'.repeat(256) })).toThrow(/at most 255/);
    expect(refusal(() => decodeFrame(Uint8Array.of(0x02, 9, 1, 2), { maxFrameSize: max, label: 'blue' }))).toBe('GOSSIP_ERR_MALFORMED_FRAME');
    expect(refusal(() => decodeFrame(Uint8Array.of(0x02, 0, 0, 0x90), { maxFrameSize: max, label: 'blue' }))).toBe('GOSSIP_ERR_MALFORMED_FRAME');
  });

  it('names peers by host', () => {
    expect(peerHost('10.0.0.7:51234')).toBe('10.0.0.7');
    expect(peerHost('::1:51234')).toBe('::1');
    expect(peerHost('[fe80::1]:7946')).toBe('fe80::1');
    expect(peerHost('sim://a')).toBe('sim://a');
  });
});

describe('refused frames are summarised per peer (simulated network)', () => {
  let cluster: SimCluster | null = null;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = null;
  });

  it('turning a keyring on for one member of a running cluster: both sides report the mismatch, once per interval', async () => {
    const c = new SimCluster({ seed: 91 });
    cluster = c;
    const interval = 5_000;
    const nodes = [0, 1, 2].map((i) => c.add(`p${i}`, { refusalReportInterval: interval }));
    await c.joinAll(nodes, nodes[0]!);
    expect(await c.clock.runUntil(() => SimCluster.allAlive(nodes, nodes.map((n) => n.name)), 10_000, 5)).toBe(true);
    const summaries = new Map<string, RefusalSummary[]>();
    const record = (n: GossipNode): void => {
      n.on('frames-refused', (s) => summaries.set(n.name, [...(summaries.get(n.name) ?? []), s]));
    };
    nodes.forEach(record);
    // p2 restarts with a keyring at the same address (as an operator enabling encryption one agent at a time).
    await nodes[2]!.shutdown();
    c.nodes.splice(c.nodes.indexOf(nodes[2]!), 1);
    const enc = c.add('p2', { keyring: new Keyring(Keyring.generateKey()), refusalReportInterval: interval, tuning: { joinTimeout: 1_000 } });
    record(enc);
    void enc.join([nodes[0]!.address]).catch(() => undefined);
    const span = 30_000;
    await c.clock.advance(span);

    const encSide = summaries.get('p2') ?? [];
    expect(encSide.length).toBeGreaterThan(0);
    expect(encSide.some((s) => s.reasons.GOSSIP_ERR_PLAINTEXT_REFUSED !== undefined)).toBe(true);
    expect(encSide[0]!.reasons.GOSSIP_ERR_PLAINTEXT_REFUSED?.message).toMatch(/requires encryption/);
    const plainSide = [...(summaries.get('p0') ?? []), ...(summaries.get('p1') ?? [])];
    expect(plainSide.some((s) => s.reasons.GOSSIP_ERR_NO_KEYRING !== undefined && s.peer === 'sim://p2')).toBe(true);
    // Bounded: at most one summary per peer per interval (+1 for the first, reported at once).
    for (const [name, list] of summaries) {
      const byPeer = new Map<string, number>();
      for (const s of list) byPeer.set(s.peer, (byPeer.get(s.peer) ?? 0) + 1);
      for (const [peer, count] of byPeer) {
        expect(count, `${name} about ${peer}`).toBeLessThanOrEqual(Math.ceil(span / interval) + 1);
      }
    }
    const refusedFrames = encSide.reduce((a, s) => a + s.total, 0);
    expect(refusedFrames).toBeGreaterThan(encSide.length);
  });
});

describe('two clusters with different labels on loopback', () => {
  const nodes: GossipNode[] = [];
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.shutdown()));
  });

  async function start(name: string, label: string, keyring?: Keyring): Promise<GossipNode> {
    const transport = await createWsTransport({ host: '127.0.0.1', port: 0 });
    const node = createNode({
      name,
      transport,
      label,
      profile: LOCAL_PROFILE,
      tuning: { joinTimeout: 1_000 },
      refusalReportInterval: 1_000,
      ...(keyring ? { keyring } : {}),
    });
    nodes.push(node);
    return node;
  }

  it('never merge, even sharing a key, and each side reports the other label', async () => {
    const key = Keyring.generateKey();
    const a = [await start('a0', 'alpha', new Keyring(key)), await start('a1', 'alpha', new Keyring(key))];
    const b = [await start('b0', 'beta', new Keyring(key)), await start('b1', 'beta', new Keyring(key))];
    await a[1]!.join([a[0]!.address]);
    await b[1]!.join([b[0]!.address]);
    const refused: RefusalSummary[] = [];
    a[0]!.on('frames-refused', (s) => refused.push(s));
    // A member of beta tries alpha's seed, and the other way round: both refused.
    await expect(b[0]!.join([a[0]!.address])).rejects.toMatchObject({ code: 'GOSSIP_ERR_JOIN_FAILED' });
    await expect(a[1]!.join([b[1]!.address])).rejects.toMatchObject({ code: 'GOSSIP_ERR_JOIN_FAILED' });
    await until('alpha reports beta frames', () => refused.length > 0);
    expect(refused[0]!.reasons.GOSSIP_ERR_LABEL?.message).toMatch(/"beta".*"alpha"/);
    expect(a[0]!.stats().dropped.label).toBeGreaterThan(0);
    expect(b[1]!.stats().dropped.label).toBeGreaterThan(0);
    for (const n of a) expect(n.members().map((m) => m.name).sort()).toEqual(['a0', 'a1']);
    for (const n of b) expect(n.members().map((m) => m.name).sort()).toEqual(['b0', 'b1']);
  });
});
