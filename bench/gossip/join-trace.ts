/**
 * Join trace: where the time of a mass join goes, without the bench's
 * polling load. Starts N gossip nodes (the bundled fixture, plain node),
 * makes all but the first join it at once, and reads each node's own
 * membership events (timestamped in the node) to tell when it had seen all
 * N alive. Prints the spread, and per node the frames, connections and CPU
 * the join cost.
 *
 *   tsx bench/gossip/join-trace.ts [N=50] [profile=lan] [runs=1] [TUNING json]
 *
 * Environment: COLD=1 skips the nodes' JIT warm-up (as the bench's --no-warm-up);
 * PROF_NODE=k with PROF_FLAGS='--cpu-prof ...' gives node k extra node flags;
 * GRACEFUL=1 stops nodes gracefully at the end (so profilers write their files);
 * JOIN_PAUSE_MS delays the joins after the 'joining' mark (to attach perf).
 *
 * A diagnostic for tuning the join path, not a benchmark: bench/gossip.bench.ts
 * is the side-by-side with Serf.
 */
import { NodeProc, killAllNodes } from '../../packages/gossip/test/fixtures/node-proc';
import { rhizomeEntry } from './clusters';

const n = Number(process.argv[2] ?? 50);
const profile = (process.argv[3] ?? 'lan') as 'lan' | 'local';
const runs = Number(process.argv[4] ?? 1);
const tuning = process.argv[5];
if (tuning) process.env['TUNING'] = tuning;

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

async function once(): Promise<number> {
  const entry = rhizomeEntry();
  const procs: NodeProc[] = [];
  for (let i = 0; i < n; i += 8) {
    procs.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(8, n - i) }, (_, k) => {
          // PROF_NODE=k: only node k gets PROF_FLAGS (e.g. --cpu-prof), read by NodeProc.start synchronously.
          if (String(i + k) === process.env['PROF_NODE']) process.env['GOSSIP_NODE_FLAGS'] = process.env['PROF_FLAGS'] ?? '';
          const started = NodeProc.start({ name: `r${i + k}`, profile, entry, retainLines: false, warmUp: process.env['COLD'] !== '1' }, 60_000);
          delete process.env['GOSSIP_NODE_FLAGS'];
          return started;
        }),
      )),
    );
  }
  // Per observer: members it currently counts alive, and when it reached N.
  const alive = procs.map(() => new Set<string>());
  const doneAt: (number | undefined)[] = procs.map(() => undefined);
  const wobble = procs.map(() => 0);
  /** When each (observer, member) pair was first learned, for the learning curve. */
  const learned: number[] = [];
  procs.forEach((p, i) => {
    alive[i]!.add(p.name);
    p.onLine((l) => {
      if (l.type !== 'member') return;
      const who = String(l['node']);
      if (l['status'] === 'alive') {
        alive[i]!.add(who);
        learned.push(Number(l['t']));
      }
      else {
        alive[i]!.delete(who);
        wobble[i]!++;
        doneAt[i] = undefined;
      }
      if (alive[i]!.size === n && doneAt[i] === undefined) doneAt[i] = Number(l['t']);
    });
  });
  const cpu0 = await Promise.all(procs.map((p) => p.request<{ cpuMs: number }>({ cmd: 'stats' })));
  const t0 = performance.timeOrigin + performance.now();
  const seed = procs[0]!.address;
  console.log(`joining; pid of r7: ${procs[7]?.pid}`); // a mark for tools that watch the join window (perf record)
  if (process.env['JOIN_PAUSE_MS']) await new Promise((r) => setTimeout(r, Number(process.env['JOIN_PAUSE_MS'])));
  await Promise.all(procs.slice(1).map((p) => p.request({ cmd: 'join', seeds: [seed] }, 60_000)));
  const deadline = Date.now() + 30_000;
  while (doneAt.some((t) => t === undefined) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 300));
  const st = await Promise.all(
    procs.map((p) => p.request<{ cpuMs: number; node: { framesOut: number; bytesOut: number }; transport: Record<string, number> }>({ cmd: 'stats' })),
  );
  const lat = doneAt.map((t) => (t === undefined ? Infinity : (t - t0) / 1000));
  const cpu = st.map((s, i) => s.cpuMs - cpu0[i]!.cpuMs);
  console.log(
    `N=${n} ${profile}: all converged ${Math.max(...lat).toFixed(2)} s; p50 ${quantile(lat, 0.5).toFixed(2)} p90 ${quantile(lat, 0.9).toFixed(2)}; ` +
      `cpu/node p50 ${quantile(cpu, 0.5).toFixed(0)} ms, seed ${cpu[0]!.toFixed(0)} ms; ` +
      `frames/node p50 ${quantile(st.map((s) => s.node.framesOut), 0.5)}, seed ${st[0]!.node.framesOut}; non-alive events ${wobble.reduce((a, b) => a + b, 0)}`,
  );
  const pairs = n * (n - 1);
  const curve = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0].map(
    (s) => `${s}s:${((100 * learned.filter((t) => (t - t0) / 1000 <= s).length) / pairs).toFixed(0)}%`,
  );
  console.log(`  pairs known by: ${curve.join(' ')}`);
  console.log(`  transport (seed): ${JSON.stringify(st[0]!.transport)}`);
  console.log(`  transport (r1):   ${JSON.stringify(st[1]!.transport)}`);
  console.log(`  slowest: ${lat.map((l, i) => [l, i] as const).sort((a, b) => b[0] - a[0]).slice(0, 5).map(([l, i]) => `r${i} ${l.toFixed(2)}`).join(', ')}`);
  if (process.env['IDLE_MS']) {
    // The steady state: CPU and traffic over a window IDLE_MS after convergence (as the bench's idle_cpu_pct).
    await new Promise((r) => setTimeout(r, Number(process.env['IDLE_MS'])));
    type S = { cpuMs: number; node: { framesOut: number }; transport: { connectsOpened: number } };
    const a = await Promise.all(procs.map((p) => p.request<S>({ cmd: 'stats' })));
    await new Promise((r) => setTimeout(r, 5_000));
    const b = await Promise.all(procs.map((p) => p.request<S>({ cmd: 'stats' })));
    const sum = (f: (x: S) => number): number => b.reduce((acc, x, i) => acc + f(x) - f(a[i]!), 0);
    console.log(
      `  idle over 5 s: cpu ${((100 * sum((x) => x.cpuMs)) / 5000).toFixed(1)} % of a core (all nodes), ` +
        `frames ${sum((x) => x.node.framesOut)}, new connections ${sum((x) => x.transport.connectsOpened)}`,
    );
  }
  // Graceful stop lets `NODE_OPTIONS=--cpu-prof` write its profiles.
  if (process.env['GRACEFUL']) await Promise.all(procs.map((p) => p.stop()));
  await killAllNodes();
  return Math.max(...lat);
}

const results: number[] = [];
for (let r = 0; r < runs; r++) results.push(await once());
if (runs > 1) console.log(`runs: ${results.map((x) => x.toFixed(2)).join(' ')}; median ${quantile(results, 0.5).toFixed(2)}`);
process.exit(0);
