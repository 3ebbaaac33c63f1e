/**
 * Gossip benchmark: Rhizome's gossip mesh side by side with HashiCorp Serf,
 * real processes on 127.0.0.1, plus simulation figures at larger N.
 *
 *   pnpm bench:gossip                                   N = 5, 20, 50; sim N = 10, 100, 1000
 *   pnpm bench:gossip -- --n 5,20 --out FILE            sizes and output path
 *   options: --profile lan|local (default lan, the same profile for both systems)
 *            --sim-n 10,100  --no-sim  --no-serf  --no-real
 *            --sim-no-fp    skip the two false-positive windows (join, idle, event only)
 *            --no-warm-up   Rhizome agents skip their JIT warm-up at start (cold joins)
 *
 * Writes JSON rows `{ n, metric, rhizome, serf }` (bench/results/gossip.json
 * by default) and prints a table with each figure's ratio to Serf's
 * (rhizome / serf: below 1 is better for times, memory and CPU).
 * Real metrics: join_s, fail_s, leave_s, event_p50_ms, event_max_ms, rss_mb,
 * idle_cpu_pct (steady state), plus idle_cpu_early_pct, join_known_s, leave_as_failed, join_stragglers and warm_up_cpu_ms (see gossip/real.ts).
 * Simulation metrics (serf: null), prefixed sim_: see gossip/sim.ts.
 *
 * Not a test: nothing here asserts a speed. Serf is installed with
 * `apt-get install -y serf` when missing.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import Table from 'cli-table3';
import { RhizomeCluster, SerfCluster, ensureSerf } from './gossip/clusters';
import type { AgentCluster } from './gossip/clusters';
import { measureReal } from './gossip/real';
import type { RealResult } from './gossip/real';
import { measureSim, SLOW_MS } from './gossip/sim';
import { killAllNodes } from '../packages/gossip/test/fixtures/node-proc';

interface Row {
  n: number;
  metric: string;
  rhizome: number | null;
  serf: number | null;
}

function parseArgs(argv: string[]) {
  const o = {
    n: [5, 20, 50],
    simN: [10, 100, 1000],
    out: 'bench/results/gossip.json',
    profile: 'lan' as 'lan' | 'local',
    sim: true,
    serf: true,
    real: true,
    warmUp: true,
    simFp: true,
  };
  const list = (v: string | undefined, flag: string): number[] => {
    const xs = (v ?? '').split(',').map((x) => Number(x.trim()));
    if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < 2)) throw new TypeError(`${flag} takes sizes like 5,20,50 (each >= 2)`);
    return xs;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') continue;
    else if (a === '--n') o.n = list(argv[++i], '--n');
    else if (a === '--sim-n') o.simN = list(argv[++i], '--sim-n');
    else if (a === '--out') o.out = argv[++i] ?? o.out;
    else if (a === '--profile') {
      const p = argv[++i];
      if (p !== 'lan' && p !== 'local') throw new TypeError('--profile takes lan or local');
      o.profile = p;
    } else if (a === '--no-sim') o.sim = false;
    else if (a === '--no-serf') o.serf = false;
    else if (a === '--no-real') o.real = false;
    else if (a === '--no-warm-up') o.warmUp = false;
    else if (a === '--sim-no-fp') o.simFp = false;
    else throw new TypeError(`unknown option ${a}; see the header of bench/gossip.bench.ts`);
  }
  return o;
}

const REAL_METRICS: (keyof RealResult)[] = [
  'join_s',
  'join_known_s',
  'fail_s',
  'leave_s',
  'event_p50_ms',
  'event_max_ms',
  'rss_mb',
  'idle_cpu_pct',
  'idle_cpu_early_pct',
  'leave_as_failed',
  'join_stragglers',
  'warm_up_cpu_ms',
];

function fmt(v: number | null): string {
  if (v === null) return '—';
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function ratio(r: number | null, s: number | null): string {
  if (r === null || s === null) return '—';
  if (s === 0) return r === 0 ? '=' : '∞';
  return `${(r / s).toFixed(2)}×`;
}

async function runReal(cluster: AgentCluster, n: number, profile: 'lan' | 'local'): Promise<RealResult | null> {
  try {
    return await measureReal(cluster, {
      // Polling costs the agents CPU too; at N = 50 on two cores, poll less often (same for both systems).
      // join_s is rounded up to the next poll: 250 ms at N > 20 (500 ms added up to half a second to both systems).
      pollMs: n <= 20 ? 100 : 250,
      joinTimeoutMs: 120_000,
      failTimeoutMs: 60_000,
      idleWindowMs: 5_000,
      settleMs: 10_000,
      // Every agent has probed every other once: N probe intervals (1 s LAN, 200 ms local), plus a margin.
      steadyMs: Math.max(15_000, (n + 5) * (profile === 'lan' ? 1_000 : 200)),
      log: (m) => console.log(`  ${m}`),
    });
  } catch (err) {
    console.error(`  ${cluster.system} N=${n} failed: ${(err as Error).stack ?? String(err)}`);
    return null;
  } finally {
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const rows: Row[] = [];
  const started = new Date().toISOString();
  const save = (): void => {
    mkdirSync(dirname(o.out), { recursive: true });
    writeFileSync(o.out, JSON.stringify(rows, null, 2) + '\n');
  };
  if (o.real && o.serf) ensureSerf();

  if (o.real) {
    for (const n of o.n) {
      console.log(`\n== real processes, N = ${n}, profile ${o.profile} ==`);
      const rz = await runReal(new RhizomeCluster(n, o.profile, o.warmUp), n, o.profile);
      const sf = o.serf ? await runReal(new SerfCluster(n, o.profile), n, o.profile) : null;
      const table = new Table({ head: [`N=${n}`, 'rhizome', 'serf', 'rhizome/serf'] });
      for (const m of REAL_METRICS) {
        const row: Row = { n, metric: m, rhizome: rz ? (rz[m] as number | null) : null, serf: sf ? (sf[m] as number | null) : null };
        rows.push(row);
        table.push([m, fmt(row.rhizome), fmt(row.serf), ratio(row.rhizome, row.serf)]);
      }
      console.log(table.toString());
      save();
    }
  }

  if (o.sim) {
    console.log(`\n== simulation (SimNetwork, LAN profile, 1–5 ms links; slowed = +${SLOW_MS} ms per frame) ==`);
    const table = new Table({
      head: ['N', 'join rounds', 'event rounds', 'msgs/member/s', 'frames/member/s', 'slowed', 'healthy FP, LG off', 'healthy FP, LG on', 'slowed failed, LG off', 'slowed failed, LG on', 'wall s', 'cpu s', 'peak RSS MB', 'join cpu s', 'heap B/pair'],
    });
    for (const n of o.simN) {
      // Each line says how much CPU the process has used so far: where a large N spends it.
      const cpu = (): string => ((c) => (c.user + c.system) / 1e6)(process.cpuUsage()).toFixed(0);
      const s = await measureSim(n, (m) => console.log(`  [cpu ${cpu()} s] ${m}`), 42, o.simFp);
      for (const [metric, v] of [
        ['sim_join_rounds', s.join_rounds],
        ['sim_event_rounds', s.event_rounds],
        ['sim_msgs_per_member_s', s.msgs_per_member_s],
        ['sim_frames_per_member_s', s.frames_per_member_s],
        ['sim_slowed', s.slowed],
        ['sim_fp_rate_lifeguard_off', s.fp_rate_lifeguard_off],
        ['sim_fp_rate_lifeguard_on', s.fp_rate_lifeguard_on],
        ['sim_slowed_failed_lifeguard_off', s.slowed_failed_lifeguard_off],
        ['sim_slowed_failed_lifeguard_on', s.slowed_failed_lifeguard_on],
        ['sim_cpu_s', s.cpu_s],
        ['sim_join_cpu_s', s.join_cpu_s],
        ['sim_heap_per_pair_b', s.heap_per_pair_b],
        ['sim_rss_peak_mb', s.rss_peak_mb],
      ] as const) {
        rows.push({ n, metric, rhizome: v, serf: null });
      }
      table.push([
        n,
        fmt(s.join_rounds),
        fmt(s.event_rounds),
        fmt(s.msgs_per_member_s),
        fmt(s.frames_per_member_s),
        fmt(s.slowed),
        fmt(s.fp_rate_lifeguard_off),
        fmt(s.fp_rate_lifeguard_on),
        fmt(s.slowed_failed_lifeguard_off),
        fmt(s.slowed_failed_lifeguard_on),
        fmt(s.wall_s),
        fmt(s.cpu_s),
        fmt(s.rss_peak_mb),
        fmt(s.join_cpu_s),
        fmt(s.heap_per_pair_b),
      ]);
      save();
    }
    console.log(table.toString());
  }
  save();
  console.log(`\nwrote ${rows.length} rows to ${o.out} (started ${started})`);
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    await killAllNodes();
  });
