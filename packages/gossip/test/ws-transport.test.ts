import { describe, it, expect, afterEach } from 'vitest';
import net from 'node:net';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { createWsTransport, WS_PATH } from '../src/ws-transport';
import type { WsTransport, WsTransportOptions } from '../src/ws-transport';
import type { UnreachableReason } from '../src/transport';
import { killAll, spawnFixture } from './fixtures/proc';
import { until } from '@rhizome/test-support';

const here = path.dirname(fileURLToPath(import.meta.url));
const PEER = path.join(here, 'fixtures/ws-peer.ts');

const open: WsTransport[] = [];
const servers: { close(): void }[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
  for (const s of servers.splice(0)) s.close();
  await killAll();
});

interface Recorder {
  frames: { frame: Uint8Array; remote: string }[];
  unreachable: { to: string; reason: UnreachableReason }[];
}

async function transport(opts: WsTransportOptions = {}): Promise<WsTransport & Recorder> {
  const t = await createWsTransport({ host: '127.0.0.1', port: 0, ...opts });
  open.push(t);
  const rec: Recorder = { frames: [], unreachable: [] };
  t.setHandler({
    onFrame: (frame, remote) => rec.frames.push({ frame, remote }),
    onUnreachable: (to, reason) => rec.unreachable.push({ to, reason }),
  });
  return Object.assign(t, rec);
}

function seqFrame(i: number, size = 8): Uint8Array {
  const f = new Uint8Array(size);
  new DataView(f.buffer).setUint32(0, i);
  return f;
}
const seqOf = (f: Uint8Array): number => new DataView(f.buffer, f.byteOffset, f.byteLength).getUint32(0);

/** A port nobody listens on (bound then released). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('ws transport: delivery', () => {
  it('delivers frames between two nodes, in order, both ways', async () => {
    const a = await transport();
    const b = await transport();
    expect(a.address).toBe(`127.0.0.1:${a.port}`);
    const N = 2000;
    // Open both connections first: frames queued while connecting are bounded (next test).
    a.send(b.address, seqFrame(0));
    b.send(a.address, seqFrame(0));
    await until('connections open', () => b.frames.length === 1 && a.frames.length === 1);
    a.frames.length = 0;
    b.frames.length = 0;
    for (let i = 0; i < N; i++) {
      a.send(b.address, seqFrame(i, 8 + (i % 300)));
      b.send(a.address, seqFrame(i));
    }
    await until('all frames delivered', () => b.frames.length === N && a.frames.length === N);
    expect(b.frames.map((f) => seqOf(f.frame))).toEqual([...Array(N).keys()]);
    expect(a.frames.map((f) => seqOf(f.frame))).toEqual([...Array(N).keys()]);
    expect(b.frames[5]!.frame.length).toBe(8 + 5);
    // remote is the transport-level peer (an ephemeral port), not the node address.
    expect(b.frames[0]!.remote).toMatch(/^127\.0\.0\.1:\d+$/);
    // One connection each way, reused.
    expect(a.stats().connectsStarted).toBe(1);
    expect(a.stats().framesSent).toBe(N + 1);
    expect(b.stats().framesReceived).toBe(N + 1);
    expect(b.stats().inboundAccepted).toBe(1);
    expect(a.unreachable).toEqual([]);
  });

  it('bounds the queue while connecting, dropping the oldest', async () => {
    const a = await transport({ maxQueuedFrames: 4 });
    const b = await transport();
    for (let i = 0; i < 10; i++) a.send(b.address, seqFrame(i));
    await until('4 frames', () => b.frames.length === 4);
    expect(b.frames.map((f) => seqOf(f.frame))).toEqual([6, 7, 8, 9]);
    expect(a.stats().queueDropped).toBe(6);
    // Once open, nothing is queued or dropped any more.
    for (let i = 10; i < 110; i++) a.send(b.address, seqFrame(i));
    await until('104 frames', () => b.frames.length === 104);
    expect(a.stats().queueDropped).toBe(6);
  });

  it('drops a connection whose pings go unanswered (black-holed), without a report, and dials again', async () => {
    // A peer that reads frames but never answers a ping: what a connection looks like from our side
    // once a partition swallows everything sent on it.
    const { WebSocketServer } = await import('ws');
    const got: number[] = [];
    const silent = new WebSocketServer({ host: '127.0.0.1', port: 0, path: WS_PATH, autoPong: false });
    servers.push(silent);
    silent.on('connection', (ws) => ws.on('message', () => got.push(1)));
    await new Promise<void>((r) => silent.once('listening', () => r()));
    const to = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    const a = await transport({ deadConnectionMs: 300 });
    a.send(to, seqFrame(1));
    await until('dropped as dead', () => a.stats().deadClosed === 1 && a.stats().openOutbound === 0, 5_000);
    expect(a.unreachable).toEqual([]);
    a.send(to, seqFrame(2));
    await until('dialled again', () => a.stats().connectsOpened === 2 && got.length === 2, 5_000);
    // A peer that answers its pings keeps its connection.
    const b = await transport();
    a.send(b.address, seqFrame(3));
    await until('b got it', () => b.frames.length === 1);
    await until('the silent peer dropped again', () => a.stats().deadClosed === 2, 5_000);
    // Three dead-connection periods later, b's connection is still the one open, never dropped.
    await new Promise((r) => setTimeout(r, 900));
    expect(a.stats().deadClosed).toBe(2);
    expect(a.stats().openOutbound).toBe(1);
    expect(a.stats().connectsOpened).toBe(3);
  });

  it('closes idle connections and reopens on the next send', async () => {
    const a = await transport({ idleTimeoutMs: 150 });
    const b = await transport({ idleTimeoutMs: 150 });
    a.send(b.address, seqFrame(1));
    await until('first frame', () => b.frames.length === 1);
    await until('idle close', () => a.stats().openOutbound === 0 && b.stats().openInbound === 0);
    expect(a.stats().idleClosed + b.stats().idleClosed).toBeGreaterThanOrEqual(1);
    a.send(b.address, seqFrame(2));
    await until('second frame after reconnect', () => b.frames.length === 2);
    expect(a.stats().connectsStarted).toBe(2);
    // A graceful idle close is not evidence of anything.
    expect(a.unreachable).toEqual([]);
  });

  it('close() is idempotent, frees the port, and peers do not see it as a crash', async () => {
    const a = await transport();
    const b = await transport();
    a.send(b.address, seqFrame(1));
    b.send(a.address, seqFrame(1));
    await until('frames', () => b.frames.length === 1 && a.frames.length === 1);
    const port = b.port;
    await Promise.all([b.close(), b.close()]);
    await b.close();
    // Give a's close handler a moment to run, then check it reported nothing.
    await until('a notices b closing', () => a.stats().openOutbound === 0);
    expect(a.unreachable).toEqual([]);
    const again = await createWsTransport({ host: '127.0.0.1', port });
    open.push(again);
    expect(again.port).toBe(port);
    b.send(a.address, seqFrame(2)); // after close: silently ignored
  });
});

describe('ws transport: unreachable evidence', () => {
  it("reports 'refused' when nobody listens, and drops what was queued", async () => {
    const a = await transport();
    const to = `127.0.0.1:${await freePort()}`;
    for (let i = 0; i < 3; i++) a.send(to, seqFrame(i));
    await until('refused report', () => a.unreachable.length === 1);
    expect(a.unreachable[0]).toEqual({ to, reason: 'refused' });
    expect(a.stats().refused).toBe(1);
    expect(a.stats().undeliveredDropped).toBe(3);
    // Each new attempt is reported again.
    a.send(to, seqFrame(9));
    await until('second refused report', () => a.unreachable.length === 2);
  });

  it("reports 'refused' when something that is not a gossip node answers", async () => {
    const a = await transport();
    const s = http.createServer((_req, res) => {
      res.writeHead(404);
      res.end();
    });
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const to = `127.0.0.1:${(s.address() as net.AddressInfo).port}`;
    a.send(to, seqFrame(0));
    await until('report', () => a.unreachable.length === 1);
    expect(a.unreachable[0]!.reason).toBe('refused');
  });

  it("reports 'timeout' when the connection does not open in time", async () => {
    // Accepts TCP but never answers the WebSocket handshake.
    const sockets: net.Socket[] = [];
    const s = net.createServer((sock) => sockets.push(sock));
    servers.push({ close: () => (sockets.forEach((x) => x.destroy()), s.close()) });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const a = await transport({ connectTimeoutMs: 300 });
    const to = `127.0.0.1:${(s.address() as net.AddressInfo).port}`;
    a.send(to, seqFrame(0));
    await until('timeout report', () => a.unreachable.length === 1);
    expect(a.unreachable[0]).toEqual({ to, reason: 'timeout' });
    expect(a.stats().timeouts).toBe(1);
  });

  it("reports 'reset' when the peer process is SIGKILLed, then 'refused'", async () => {
    const peer = await spawnFixture(PEER);
    const { port } = await peer.line<{ port: number }>((l) => typeof l['port'] === 'number', 'peer listening');
    const to = `127.0.0.1:${port}`;
    const a = await transport();
    for (let i = 0; i < 100; i++) a.send(to, seqFrame(i));
    await peer.line((l) => l['frames'] === 100, 'peer received 100 frames');
    expect(a.stats().openOutbound).toBe(1);
    peer.kill('SIGKILL');
    await peer.exited;
    // No send needed: the abrupt close of the open connection is the evidence.
    await until('reset report', () => a.unreachable.length >= 1);
    expect(a.unreachable[0]).toEqual({ to, reason: 'reset' });
    a.send(to, seqFrame(101));
    await until('refused report', () => a.unreachable.length >= 2);
    expect(a.unreachable[1]).toEqual({ to, reason: 'refused' });
    expect(a.stats().resets).toBe(1);
  });
});

describe('ws transport: bad input', () => {
  it('closes a connection that sends a frame above maxFrameSize, counts it, keeps serving others', async () => {
    const big = await transport({ maxFrameSize: 1 << 20 });
    const b = await transport({ maxFrameSize: 4096 });
    const good = await transport();
    big.send(b.address, new Uint8Array(100_000));
    await until('oversize close', () => b.stats().oversizeClosed === 1);
    await until('sender saw the close', () => big.stats().openOutbound === 0);
    expect(b.frames).toEqual([]);
    // The peer closed with 1009, a graceful close: not crash evidence.
    expect(big.unreachable).toEqual([]);
    good.send(b.address, seqFrame(7));
    await until('b still serves', () => b.frames.length === 1);
    // The same sender reconnects for frames that fit.
    big.send(b.address, seqFrame(8));
    await until('sender reconnects', () => b.frames.length === 2);
  });

  it('drops outbound frames above its own maxFrameSize without sending them', async () => {
    const a = await transport({ maxFrameSize: 1024 });
    const b = await transport();
    a.send(b.address, new Uint8Array(2000));
    a.send(b.address, seqFrame(3));
    await until('small frame', () => b.frames.length === 1);
    expect(seqOf(b.frames[0]!.frame)).toBe(3);
    expect(a.stats().oversizeDropped).toBe(1);
  });

  it('closes connections that send text, and ignores other paths', async () => {
    const b = await transport();
    const ws = new WebSocket(`ws://${b.address}${WS_PATH}`);
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    await new Promise((r, j) => ws.on('open', r).on('error', j));
    ws.send('hello');
    expect(await closed).toBe(1003);
    expect(b.stats().protocolErrorsClosed).toBe(1);
    const other = new WebSocket(`ws://${b.address}/elsewhere`);
    const err = await new Promise<Error>((r) => other.on('error', r));
    expect(err.message).toMatch(/400/);
    expect(b.frames).toEqual([]);
  });

  it('refuses connections beyond maxInboundConnections, reported as a timeout (the node is alive)', async () => {
    const b = await transport({ maxInboundConnections: 1 });
    const a1 = await transport();
    const a2 = await transport();
    a1.send(b.address, seqFrame(1));
    await until('first connection', () => b.frames.length === 1);
    a2.send(b.address, seqFrame(2));
    await until('second refused', () => a2.unreachable.length === 1);
    expect(a2.unreachable[0]!.reason).toBe('timeout');
    expect(b.stats().inboundRefused).toBe(1);
    expect(b.frames).toHaveLength(1);
  });

  it('forgets an inbound connection whose peer process dies, without calling it a protocol error', async () => {
    const b = await transport();
    const peer = await spawnFixture(PEER, { PEER_TARGET: b.address });
    await until('peer connected and sent', () => b.frames.length >= 1);
    expect(b.stats().openInbound).toBe(1);
    peer.kill('SIGKILL');
    await peer.exited;
    await until('inbound connection gone', () => b.stats().openInbound === 0);
    expect(b.stats().protocolErrorsClosed).toBe(0);
    // Nothing to report: nobody told the transport this inbound peer's node address.
    expect(b.unreachable).toEqual([]);
  });

  /** `t`'s "node" takes every frame as coming from `addr` (as node.ts does after decoding the envelope). */
  function acceptAllFrom(t: Awaited<ReturnType<typeof transport>>, addr: string): void {
    t.setHandler({
      onFrame: (frame, remote) => {
        t.frames.push({ frame, remote });
        t.peerAddress!(remote, addr);
      },
      onUnreachable: (to, reason) => t.unreachable.push({ to, reason }),
    });
  }

  it('replies over an inbound connection once its sender is known (one handshake per pair)', async () => {
    const a = await transport();
    const b = await transport();
    acceptAllFrom(b, a.address);
    a.send(b.address, seqFrame(1));
    await until('a reached b', () => b.frames.length === 1);
    for (let i = 0; i < 5; i++) b.send(a.address, seqFrame(i));
    await until('b answered a', () => a.frames.length === 5);
    expect(a.frames.map((f) => seqOf(f.frame))).toEqual([0, 1, 2, 3, 4]);
    expect(b.stats().connectsStarted).toBe(0);
    expect(b.stats().inboundRoutes).toBe(1);
    expect(a.stats().inboundAccepted).toBe(0);
  });

  it('never lets a second connection claiming the same address steal the route', async () => {
    const a = await transport();
    const b = await transport();
    acceptAllFrom(b, a.address);
    a.send(b.address, seqFrame(1));
    await until('a reached b', () => b.frames.length === 1);
    const impostor = new WebSocket(`ws://${b.address}${WS_PATH}`);
    const got: unknown[] = [];
    impostor.on('message', (d) => got.push(d));
    await new Promise<void>((r) => impostor.once('open', () => r()));
    impostor.send(seqFrame(9));
    await until('impostor frame arrived', () => b.frames.length === 2);
    b.send(a.address, seqFrame(7));
    await until('b answered over the first connection', () => a.frames.length === 1);
    expect(seqOf(a.frames[0]!.frame)).toBe(7);
    expect(got).toEqual([]);
    expect(b.stats().inboundRoutes).toBe(1);
    impostor.terminate();
  });

  it("reports 'reset' for a routed inbound connection that dies without a close frame", async () => {
    const b = await transport();
    const claimed = '127.0.0.1:1';
    b.setHandler({
      onFrame: (frame, remote) => {
        b.frames.push({ frame, remote });
        b.peerAddress!(remote, claimed);
      },
      onUnreachable: (to, reason) => b.unreachable.push({ to, reason }),
    });
    const peer = new WebSocket(`ws://${b.address}${WS_PATH}`);
    await new Promise<void>((r) => peer.once('open', () => r()));
    peer.send(seqFrame(1));
    await until('peer frame arrived', () => b.frames.length === 1);
    peer.terminate();
    await until('reset reported', () => b.unreachable.length === 1);
    expect(b.unreachable[0]).toEqual({ to: claimed, reason: 'reset' });
  });

  it('survives a handler that throws', async () => {
    const a = await transport();
    const b = await createWsTransport({ host: '127.0.0.1', port: 0 });
    open.push(b);
    let n = 0;
    b.setHandler({
      onFrame() {
        n++;
        throw new Error('handler bug');
      },
      onUnreachable() {},
    });
    a.send(b.address, seqFrame(1));
    a.send(b.address, seqFrame(2));
    await until('both frames reached the handler', () => n === 2);
  });

  it('rejects contradictory options with a TypeError', async () => {
    await expect(createWsTransport({ maxFrameSize: 10 })).rejects.toThrow(TypeError);
    await expect(createWsTransport({ maxFrameSize: 1 << 20, maxBufferedBytes: 1024 })).rejects.toThrow(/maxBufferedBytes/);
    await expect(createWsTransport({ port: 70000 })).rejects.toThrow(/port/);
  });
});
