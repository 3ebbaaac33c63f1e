/**
 * JIT warm-up: run the gossip hot paths once, at start, between throwaway
 * nodes on loopback, so that a process's first real join does not run them
 * cold.
 *
 * Why: V8 compiles a function when it is first called and optimizes it only
 * once it is hot. A fresh agent process that joins a cluster runs every
 * path for the first time (WebSocket handshakes both ways, frame encoding,
 * message parsing, membership merges, gossip rounds) and pays ~30× more CPU
 * per frame than the same process a second later. On one host that is
 * ~30 ms per agent; when 50 agents on 2 cores join one seed at once, it is
 * most of the CPU of the join: every member saw all 50 after about 1.6 s
 * cold and 0.3 s warm (4 runs each, bench/gossip/join-trace.ts). Serf,
 * compiled ahead of time, has no such phase.
 *
 * What it does: `size` nodes (real WebSocket transports on 127.0.0.1,
 * ephemeral ports, fast timers) join one another, gossip `rounds` user
 * events and queries, probe each other, and shut down. Nothing outside the
 * process is contacted; the ports are closed again before it resolves.
 */
import { createNode } from './node';
import { Keyring } from './keyring';
import { LOCAL_PROFILE } from './options';
import { createWsTransport } from './ws-transport';
import { randomBytes } from 'node:crypto';
import type { GossipNode } from './node';

export interface WarmUpOptions {
  /** Throwaway nodes (default 3: every node both dials and accepts). */
  size?: number;
  /** User events and queries exchanged (default 30). */
  rounds?: number;
  /** Also warm the AES-GCM path (default false: only when the real node uses a keyring). */
  encrypted?: boolean;
}

export interface WarmUpReport {
  /** Wall time, ms. */
  readonly ms: number;
  /** CPU time of the whole process meanwhile (user + system), ms. */
  readonly cpuMs: number;
}

const WARM_PROFILE = Object.freeze({ ...LOCAL_PROFILE, gossipInterval: 10, probeInterval: 20, probeTimeout: 15, joinFollowUp: 5 });

export async function warmUp(options: WarmUpOptions = {}): Promise<WarmUpReport> {
  const size = options.size ?? 3;
  const rounds = options.rounds ?? 30;
  if (!Number.isInteger(size) || size < 2 || size > 16) throw new TypeError(`warmUp: size must be an integer 2..16, got ${String(size)}`);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 1000) throw new TypeError(`warmUp: rounds must be an integer 1..1000, got ${String(rounds)}`);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const key = options.encrypted ? randomBytes(32) : undefined;
  const nodes: GossipNode[] = [];
  try {
    for (let i = 0; i < size; i++) {
      const transport = await createWsTransport({ host: '127.0.0.1', port: 0 });
      nodes.push(
        createNode({
          name: `warm-up-${i}`,
          transport,
          profile: WARM_PROFILE,
          tags: { role: 'warm-up' },
          ...(key ? { keyring: new Keyring(key) } : {}),
        }),
      );
    }
    const [first, ...rest] = nodes as [GossipNode, ...GossipNode[]];
    first.onQuery('warm-up', (q) => ({ echo: q.payload }));
    await Promise.all(rest.map((n) => n.join([first.address])));
    let delivered = 0;
    const last = nodes[nodes.length - 1]!;
    const off = last.on('user-event', () => delivered++);
    for (let r = 0; r < rounds; r++) {
      nodes[r % size]!.sendEvent('warm-up', { r, pad: 'x'.repeat(r % 64) });
      // Wait for the first answer (or 200 ms), not for the query's whole window.
      const q = nodes[(r + 1) % size]!.query('warm-up', r, { timeout: 200 });
      await new Promise<void>((answered) => {
        q.onResponse(() => answered());
        void q.done.then(() => answered());
      });
      q.close();
      if (r % 10 === 0) nodes[r % size]!.setTags({ role: 'warm-up', r: String(r) });
    }
    // Let the last events and a few probe rounds run.
    const deadline = performance.now() + 500;
    while (delivered < rounds && performance.now() < deadline) await new Promise((res) => setTimeout(res, 5));
    off();
  } finally {
    await Promise.all(nodes.map((n) => n.shutdown()));
  }
  const c = process.cpuUsage(c0);
  return { ms: performance.now() - t0, cpuMs: (c.user + c.system) / 1000 };
}
