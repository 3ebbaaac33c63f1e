/**
 * Protocol versions as ranges (src/internal/versions.ts): a frame from a
 * peer one version ahead or behind is understood or refused with a reason
 * naming the side to upgrade, and the refusals are summarised per peer.
 */
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrames, FrameError, PROTOCOL_VERSION, type Envelope } from '../src/internal/codec';
import type { RefusalSummary } from '../src/internal/refusals';
import { PeerVersions, PROTOCOL_VERSIONS, speakTo, type VersionRange } from '../src/internal/versions';
import type { GossipNode } from '../src/node';
import { SimCluster } from './helpers/sim-cluster';

const PING = 1;
const ACK = 3;
const MAX = 65_536;

function frame(range: VersionRange, speak: number, msgs: unknown[] = [{ t: PING, seq: 1, target: 'x' }]): Uint8Array {
  const out = encodeFrames({ from: 'peer', addr: 'sim://peer', msgs }, { maxFrameSize: MAX, versions: range, speak });
  expect(out).toHaveLength(1);
  return out[0]!;
}

function refusal(f: Uint8Array, ours: VersionRange = PROTOCOL_VERSIONS): FrameError {
  try {
    decodeFrame(f, { maxFrameSize: MAX, versions: ours });
  } catch (err) {
    expect(err).toBeInstanceOf(FrameError);
    return err as FrameError;
  }
  throw new Error('frame was accepted');
}

describe('version ranges in the codec', () => {
  it('advertises the sender range and speaks the requested version', () => {
    const env = decodeFrame(frame({ min: 1, max: 2 }, 1), { maxFrameSize: MAX });
    expect([env.v, env.pmin, env.pmax]).toEqual([1, 1, 2]);
    expect(PROTOCOL_VERSION).toBe(PROTOCOL_VERSIONS.max);
  });

  it('understands a frame without a range (a sender from before ranges) as [v, v]', () => {
    const packr = new Packr({ useRecords: false });
    const body = packr.pack({ v: 1, from: 'old', addr: 'sim://old', msgs: [] });
    const f = new Uint8Array(1 + body.length);
    f.set(body, 1);
    const env: Envelope = decodeFrame(f, { maxFrameSize: MAX });
    expect([env.v, env.pmin, env.pmax]).toEqual([1, 1, 1]);
  });

  it('refuses a version outside its range, naming who must act', () => {
    const ours = { min: 2, max: 3 };
    // One release ahead, overlapping: the sender talks down once it has heard from us.
    const ahead = refusal(frame({ min: 3, max: 4 }, 4), ours);
    expect(ahead.code).toBe('GOSSIP_ERR_VERSION');
    expect(ahead.message).toMatch(/speaks protocol version 4 \(its sender understands 3\.\.4\); this node understands 2\.\.3/);
    expect(ahead.message).toMatch(/speaks 3 to this node once it has heard from it/);
    // Two releases ahead: nothing in common.
    expect(refusal(frame({ min: 4, max: 5 }, 4), ours).message).toMatch(/upgrade this node/);
    // Two releases behind.
    expect(refusal(frame({ min: 0, max: 1 }, 1), ours).message).toMatch(/upgrade the sender/);
    // One behind, overlapping, but speaking its oldest.
    expect(refusal(frame({ min: 1, max: 2 }, 1), ours).message).toMatch(/speaks 2 to this node once/);
  });

  it('refuses an inconsistent or absurd range as malformed', () => {
    const packr = new Packr({ useRecords: false });
    for (const env of [
      { v: 1, pmin: 2, pmax: 3, from: 'p', addr: 'a', msgs: [] },
      { v: 1, pmin: 1, pmax: 1e6, from: 'p', addr: 'a', msgs: [] },
      { v: -1, from: 'p', addr: 'a', msgs: [] },
      { v: 1, pmin: 'x', from: 'p', addr: 'a', msgs: [] },
    ]) {
      const body = packr.pack(env);
      const f = new Uint8Array(1 + body.length);
      f.set(body, 1);
      expect(refusal(f).code).toBe('GOSSIP_ERR_MALFORMED_FRAME');
    }
  });

  it('refuses to speak a version outside its own range', () => {
    expect(() => encodeFrames({ from: 'p', addr: 'a', msgs: [1] }, { maxFrameSize: MAX, versions: { min: 1, max: 2 }, speak: 3 })).toThrow(TypeError);
  });

  it('a rolling upgrade: each pair speaks the newest version both understand', () => {
    const v1 = { min: 1, max: 1 };
    const v2 = { min: 1, max: 2 }; // the next release keeps version 1
    const v3 = { min: 2, max: 3 }; // and the one after drops it
    // An upgraded node speaks its oldest to a peer it has not heard from: an old node understands it.
    const heard = new PeerVersions();
    expect(speakTo(v2, heard.get('old'))).toBe(1);
    const env = decodeFrame(frame(v2, speakTo(v2, heard.get('old'))), { maxFrameSize: MAX, versions: v1 });
    expect(env.v).toBe(1);
    // The old node answers with its range; the upgraded one keeps speaking 1 to it.
    heard.note('old', decodeFrame(frame(v1, 1), { maxFrameSize: MAX, versions: v2 }).pmax);
    expect(speakTo(v2, heard.get('old'))).toBe(1);
    // Once every node runs v2, pairs move to 2; a v3 node and a v2 node meet at 2.
    heard.note('new', 2);
    expect(speakTo(v2, heard.get('new'))).toBe(2);
    expect(decodeFrame(frame(v2, 2), { maxFrameSize: MAX, versions: v3 }).v).toBe(2);
    expect(speakTo(v3, undefined)).toBe(2);
    expect(decodeFrame(frame(v3, 2), { maxFrameSize: MAX, versions: v2 }).v).toBe(2);
    expect(speakTo(v3, 2)).toBe(2);
  });

  it('remembers at most its bound of peers', () => {
    const pv = new PeerVersions(3);
    for (let i = 0; i < 10; i++) pv.note(`p${i}`, 2);
    expect(pv.size).toBe(3);
    expect(pv.get('p9')).toBe(2);
    expect(pv.get('p0')).toBeUndefined();
  });
});

let cluster: SimCluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

describe('a node and a peer advertising a newer range', () => {
  it('understands the peer speaking our version, answers in it, and refuses newer frames once per interval with the reason', async () => {
    const c = new SimCluster({ seed: 77, latency: [1, 2] });
    cluster = c;
    const [a, b] = c.addMany(2, 'v') as [GossipNode, GossipNode];
    await c.joinAll([b], a);
    expect(await c.clock.runUntil(() => SimCluster.allAlive([a, b], [a.name, b.name]), 10_000, 5)).toBe(true);
    const refused: RefusalSummary[] = [];
    a.on('frames-refused', (s) => refused.push(s));

    const future = { min: PROTOCOL_VERSION, max: PROTOCOL_VERSION + 1 };
    const peer = c.net.createTransport('sim://future');
    const answers: Envelope[] = [];
    peer.setHandler({ onFrame: (f) => answers.push(decodeFrame(f, { maxFrameSize: MAX, versions: future })), onUnreachable: () => {} });
    const send = (speak: number, seq: number): void => {
      const msgs = [{ t: PING, seq, target: a.name }];
      for (const f of encodeFrames({ from: 'future', addr: 'sim://future', msgs }, { maxFrameSize: MAX, versions: future, speak })) peer.send(a.address, f);
    };

    // Speaking our version: understood, and answered in the newest version both know.
    send(PROTOCOL_VERSION, 1);
    expect(await c.clock.runUntil(() => answers.length > 0, 1_000, 1)).toBe(true);
    expect(answers[0]!.msgs).toContainEqual({ t: ACK, seq: 1 });
    expect([answers[0]!.v, answers[0]!.pmin, answers[0]!.pmax]).toEqual([PROTOCOL_VERSION, PROTOCOL_VERSIONS.min, PROTOCOL_VERSIONS.max]);

    // Speaking its newer version: refused (no answer), counted, reported once at once and once at the interval's end.
    for (let i = 0; i < 20; i++) send(PROTOCOL_VERSION + 1, 100 + i);
    await c.clock.advance(11_000); // past the default 10 s refusal report interval
    expect(answers).toHaveLength(1);
    expect(a.stats().dropped.version).toBe(20);
    const mine = refused.filter((s) => s.peer === 'sim://future');
    expect(mine.length).toBeLessThanOrEqual(2);
    expect(mine.reduce((n, s) => n + s.total, 0)).toBe(20);
    expect(mine[0]!.reasons.GOSSIP_ERR_VERSION?.message).toMatch(new RegExp(`speaks ${PROTOCOL_VERSION} to this node once it has heard from it`));

    // The mesh is untouched.
    expect(a.member(b.name)?.status).toBe('alive');
    expect(b.member(a.name)?.status).toBe('alive');
  });
});
