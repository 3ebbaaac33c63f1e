/**
 * Fuzz a live node: a three-node cluster on real WebSocket transports, and an
 * attacker transport that floods one node with hostile frames (random bytes,
 * mutated valid frames, wrong versions, unknown and malformed message types,
 * random msgpack, envelopes claiming a live member's name, oversize frames).
 * The node must keep answering probes (nobody suspects it), its member list
 * must not change, every drop must be counted, and memory must stay bounded.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { Packr } from 'msgpackr';
import v8 from 'node:v8';
import vm from 'node:vm';
import { decodeFrame, encodeFrames } from '../src/internal/codec';
import { Keyring } from '../src/keyring';
import { parseMessage } from '../src/internal/messages';
import { createNode, LOCAL_PROFILE } from '../src/index';
import type { GossipNode } from '../src/index';
import { createWsTransport } from '../src/ws-transport';
import type { WsTransport } from '../src/ws-transport';
import { corpusMessages, mulberry32, mutate, randomFrame } from './fixtures/fuzz-frames';
import { until } from '@rhizome/test-support';

const SEED = Number(process.env['FUZZ_SEED'] ?? 0xf1a5);
const FRAMES = 30_000;
/**
 * The loopback profile with LAN probe timing: the attacker and all three
 * nodes share this process's event loop, so on a loaded machine (seen at
 * load 12) the local profile's 100 ms probe timeout can expire for any node
 * while the flood is being parsed. A node that stopped answering is still
 * suspected within a second.
 */
const PROFILE = { ...LOCAL_PROFILE, probeInterval: 1_000, probeTimeout: 500 };

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const nodes: GossipNode[] = [];
const transports: WsTransport[] = [];
const transportOf = new Map<string, WsTransport>();
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.shutdown()));
  await Promise.all(transports.map((t) => t.close()));
});

async function startNode(name: string, seeds: string[]): Promise<GossipNode> {
  const transport = await createWsTransport({ host: '127.0.0.1', port: 0, maxFrameSize: PROFILE.maxFrameSize });
  const node = createNode({ name, transport, profile: PROFILE, seeds });
  nodes.push(node);
  transportOf.set(name, transport);
  if (seeds.length > 0) await node.join();
  return node;
}

describe('fuzz: a live node under a flood of hostile frames', () => {
  it('keeps working, keeps its members, counts every drop, stays bounded', async () => {
    const a = await startNode('node-a', []);
    const b = await startNode('node-b', [a.address]);
    const c = await startNode('node-c', [a.address]);
    const names = ['node-a', 'node-b', 'node-c'];
    const addrOf = new Map(names.map((n, i) => [n, [a, b, c][i]!.address]));
    await until('cluster converged', () => [a, b, c].every((n) => n.members().filter((m) => m.status === 'alive').length === 3));
    const suspicions: string[] = [];
    for (const n of [b, c]) {
      n.on('member-suspect', (m) => suspicions.push(`${n.name} suspects ${m.name}`));
      n.on('member-failed', (m) => suspicions.push(`${n.name} failed ${m.name}`));
    }

    // Build the hostile frames: everything a node must refuse (valid protocol traffic is filtered out).
    const maxFrameSize = PROFILE.maxFrameSize;
    const rand = mulberry32(SEED);
    const full = new Packr({ structuredClone: true, moreTypes: true, useRecords: true });
    const corpus = corpusMessages();
    const valid = corpus.map((m) => encodeFrames({ from: 'node-b', addr: addrOf.get('node-b')!, msgs: [m] }, { maxFrameSize })[0]!);
    const foreignKey = { maxFrameSize, keyring: new Keyring(Keyring.generateKey()) };
    const sealed = corpus.map((m) => encodeFrames({ from: 'x', addr: 'y', msgs: [m] }, foreignKey)[0]!);
    const hostile = (f: Uint8Array): boolean => {
      let env;
      try {
        env = decodeFrame(f, { maxFrameSize });
      } catch {
        return true; // the frame itself is refused
      }
      const owner = addrOf.get(env.from);
      if (owner !== undefined && owner !== env.addr) return true; // claims a live member's name
      return env.msgs.every((m) => {
        try {
          parseMessage(m);
          return false;
        } catch {
          return true;
        }
      });
    };
    const frames: Uint8Array[] = [];
    const oversize: Uint8Array[] = [];
    while (frames.length < FRAMES) {
      const k = frames.length % 4;
      let f: Uint8Array;
      if (k === 0) f = randomFrame(rand, full, maxFrameSize);
      else if (k === 1) f = mutate(rand, valid[Math.floor(rand() * valid.length)]!, maxFrameSize);
      else if (k === 2) f = sealed[Math.floor(rand() * sealed.length)]!;
      else f = mutate(rand, valid[Math.floor(rand() * valid.length)]!, maxFrameSize);
      if (f.length > maxFrameSize) {
        if (oversize.length < 20) oversize.push(f);
        continue;
      }
      if (hostile(f)) frames.push(f);
    }

    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const statsBefore = a.stats();
    const membersBefore = a.members();

    const attacker = await createWsTransport({ host: '127.0.0.1', port: 0, maxFrameSize: 1 << 20 });
    transports.push(attacker);
    attacker.setHandler({ onFrame() {}, onUnreachable() {} });
    // In batches, so the attacker's own connect queue never drops frames.
    const BATCH = 200;
    const t0 = performance.now();
    for (let i = 0; i < frames.length; i += BATCH) {
      const target = statsBefore.framesIn + Math.min(frames.length, i + BATCH);
      for (const f of frames.slice(i, i + BATCH)) attacker.send(a.address, f);
      await until(`node-a received ${target} frames`, () => a.stats().framesIn >= target, { timeoutMs: 30_000, intervalMs: 5 });
    }
    const floodMs = performance.now() - t0;
    // Oversize frames: the transport closes the attacker's connection each time; the node never sees them.
    for (const f of oversize) attacker.send(a.address, f);

    // The node still works: it answers probes (nobody suspects it), and gossip still flows.
    const e = b.sendEvent('after-flood', { ok: true });
    const gotEvent = new Promise<void>((resolve) => {
      a.on('user-event', (ev) => {
        if (ev.name === 'after-flood' && ev.ltime === e.ltime) resolve();
      });
    });
    await gotEvent;
    // Several probe rounds of everyone after the flood, counted in messages received (a loaded machine may run fewer rounds per second).
    const [mb, mc] = [b.stats().messagesIn, c.stats().messagesIn];
    await until('about ten probe rounds of b and c', () => b.stats().messagesIn >= mb + 20 && c.stats().messagesIn >= mc + 20);
    expect(suspicions).toEqual([]);
    for (const n of [b, c]) expect(n.member('node-a')?.status).toBe('alive');

    // Its member list did not change (no fake members, no lost ones).
    const membersAfter = a.members();
    expect(membersAfter.map((m) => `${m.name}@${m.address}:${m.status}`).sort()).toEqual(
      membersBefore.map((m) => `${m.name}@${m.address}:${m.status}`).sort(),
    );

    // Every kind of bad input was counted.
    const d = a.stats().dropped;
    const db = statsBefore.dropped;
    const rose = (k: keyof typeof d): number => d[k] - db[k];
    for (const k of ['malformed', 'version', 'unknownType', 'spoofed', 'plaintextRefused'] as const) {
      expect(rose(k), k).toBeGreaterThan(0);
    }
    const totalDropped = (Object.keys(d) as (keyof typeof d)[]).reduce((s, k) => s + rose(k), 0);
    // Every hostile frame was dropped whole or message by message: at least one count per frame.
    expect(totalDropped).toBeGreaterThanOrEqual(frames.length);
    await until('oversize close counted', () => transportOf.get('node-a')!.stats().oversizeClosed >= 1);

    // Memory stays bounded: the flood left nothing behind.
    gc();
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    console.log(
      `live fuzz seed=${SEED}: ${frames.length} hostile frames (+${oversize.length} oversize) in ${floodMs.toFixed(0)} ms; heap growth ${(heapGrowth / 1e6).toFixed(1)} MB; drops`,
      Object.fromEntries((Object.keys(d) as (keyof typeof d)[]).map((k) => [k, rose(k)])),
    );
    expect(heapGrowth).toBeLessThan(32 * 1024 * 1024);
  });
});
