/**
 * Relations and persistence benchmark.
 *
 *   pnpm bench -- relations     prints a table, writes bench/results/relations.json
 *   RELATIONS_BENCH_ONLY=durable (or latency) pnpm bench -- relations   one section
 *
 * Durable runs/s: an engine whose every commit is appended to the agent's
 * durable state (DurableState: msgpack log, real fdatasync) in a temporary
 * directory; 20,000 events are queued at once. Measured one commit at a
 * time (each run waits for its fsync) and with group commit as the agent
 * runs it (up to GROUP_COMMIT_MAX_IN_FLIGHT later runs execute while
 * earlier fsyncs are in flight; the store batches the appends that arrive
 * meanwhile into one write and one fsync), after a warm-up pass.
 *
 * Relation latency: two agents in this process (real WebSocket gossip on
 * loopback, fsync on), related; the sender publishes a new value, the
 * receiver's `changed` handler records it. Latency is from the sender's
 * durable commit of the publish (afterCommit) to the receiver's durable
 * commit of the run that applied it, one value at a time; measured with the
 * relation-burst window off (the link path) and with the agent's default.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Table from 'cli-table3';
import { Engine, event, factsOf, type HandlerSpec, type RunCommit } from '../packages/engine/src/index';
import { DurableState, GROUP_COMMIT_MAX_IN_FLIGHT } from '../packages/agent/src/state/durable-state';
import { Agent } from '../packages/agent/src/agent';

interface RelationsBenchResult {
  /** Wall clock (depends on the disk and on how busy the machine is) and per CPU-second of the process. */
  durableRunsPerSecond: { oneAtATime: number; groupCommit: number; groupCommitPerCpuSecond: number };
  loadAverage: number;
  fdatasyncUs: number;
  /** The link path (burst window off). */
  relationLatencyMs: { p50: number; p99: number; samples: number };
  /** With the agent's default relation-burst window. */
  relationLatencyWithAgentBurstMs: { p50: number; p99: number; samples: number };
  node: string;
  date: string;
}

const RUNS = Number(process.env['BENCH_DURABLE_RUNS'] ?? 20_000);
const LATENCY_SAMPLES = Number(process.env['BENCH_LATENCY_SAMPLES'] ?? 300);

const handlers: HandlerSpec[] = [{ name: 'tick', when: event('tick'), run: (ctx) => ctx.set('n', ((ctx.get<number>('n') ?? 0) + 1) as number) }];

/** Wall-clock runs/s, and runs per second of this process's CPU time (user + system: what the figure would be on an idle machine when the disk keeps up). */
async function durableRunsPerSecond(maxCommitsInFlight: number, runs = RUNS): Promise<{ wall: number; cpu: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'rl-bench-'));
  try {
    const state = await DurableState.open({ dir, fsync: true, snapshotEvery: 5_000 });
    const engine = new Engine({ handlers, initial: state.recoveredKb, onCommit: (c: RunCommit) => state.commitRun(c), maxCommitsInFlight });
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const all: Promise<unknown>[] = [];
    for (let i = 0; i < runs; i++) all.push(engine.submit({ kind: 'internal', name: 'tick' }));
    await Promise.all(all);
    const s = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    if (factsOf(engine.knowledge)['n'] !== runs) throw new Error('lost runs');
    await state.close();
    return { wall: runs / s, cpu: runs / ((c.user + c.system) / 1e6) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function fdatasyncUs(): Promise<number> {
  const { open } = await import('node:fs/promises');
  const dir = mkdtempSync(join(tmpdir(), 'rl-bench-'));
  try {
    const f = await open(join(dir, 'f'), 'a');
    const n = 300;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      await f.write(Buffer.alloc(64, i));
      await f.datasync();
    }
    const us = ((performance.now() - t0) * 1000) / n;
    await f.close();
    return us;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * `burst`: the agent's relation-burst window (EngineOptions.burst). Off, the
 * figure is the link path itself; with the agent's default (a relation event
 * waits for a 200 ms quiet period so that a burst converges in one run) every
 * isolated change also waits that long, by design.
 */
async function relationLatency(burst: { quietMs: number; maxMs: number } | undefined, samplesWanted: number): Promise<{ p50: number; p99: number; samples: number }> {
  const charms = join(import.meta.dirname, '../packages/agent/test/fixtures/charms');
  const base = mkdtempSync(join(tmpdir(), 'rl-bench-'));
  const agents: Agent[] = [];
  try {
    const opts = { fsync: true, absentGraceMs: 3_000, ...(burst ? { relationBurst: burst } : {}) };
    const s = await Agent.start({ unit: 'sender/0', charmDir: join(charms, 'counter-sender'), dataDir: join(base, 's0'), logLevel: 'warn' }, opts);
    agents.push(s);
    const r = await Agent.start({ unit: 'receiver/0', charmDir: join(charms, 'counter-receiver'), dataDir: join(base, 'r0'), seeds: [s.gossipAddress], logLevel: 'warn' }, opts);
    agents.push(r);
    const until = async (what: string, ok: () => boolean): Promise<void> => {
      const deadline = Date.now() + 30_000;
      while (!ok()) {
        if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
        await new Promise((res) => setTimeout(res, 20));
      }
    };
    await until('members', () => s.members().length === 2 && r.members().length === 2);
    await r.directory.relate('receiver:feed', 'sender:feed');
    await until('relation', () => r.converged().views.length === 1 && s.converged().views.length === 1);

    const sentAt = new Map<number, number>();
    const receivedAt = new Map<number, number>();
    let waiting: { value: number; resolve: () => void } | undefined;
    s.engine.afterCommit((c) => {
      const v = factsOf(c.kb)['sent'];
      if (typeof v === 'number' && !sentAt.has(v)) sentAt.set(v, performance.now());
    });
    r.engine.afterCommit((c) => {
      const v = factsOf(c.kb)['last.sender-0'];
      if (typeof v !== 'number' || receivedAt.has(v)) return;
      receivedAt.set(v, performance.now());
      if (waiting && v >= waiting.value) waiting.resolve();
    });
    const samples: number[] = [];
    // A few warm-up values, then one value at a time.
    for (let v = 1; v <= samplesWanted + 20; v++) {
      const arrived = new Promise<void>((resolve) => (waiting = { value: v, resolve }));
      await s.engine.submit({ kind: 'internal', name: 'user.count', payload: { value: v } });
      await Promise.race([arrived, new Promise((_, rej) => setTimeout(() => rej(new Error(`value ${v} did not arrive within 10 s`)), 10_000))]);
      if (v > 20) samples.push(receivedAt.get(v)! - sentAt.get(v)!);
    }
    samples.sort((a, b) => a - b);
    return { p50: percentile(samples, 50), p99: percentile(samples, 99), samples: samples.length };
  } finally {
    for (const a of agents.reverse()) await a.stop().catch(() => undefined);
    rmSync(base, { recursive: true, force: true });
  }
}

/** `RELATIONS_BENCH_ONLY=durable` or `=latency` runs one section (the other reads NaN). */
const ONLY = process.env['RELATIONS_BENCH_ONLY'];
const NO_LATENCY = { p50: Number.NaN, p99: Number.NaN, samples: 0 };

async function main(): Promise<void> {
  const durable = ONLY !== 'latency';
  const fsyncUs = durable ? await fdatasyncUs() : Number.NaN;
  const oneAtATime = durable ? await durableRunsPerSecond(1) : { wall: Number.NaN, cpu: Number.NaN };
  // A first pass warms the JIT up on the group-commit path (as a running agent is), as the engine bench does.
  if (durable) await durableRunsPerSecond(GROUP_COMMIT_MAX_IN_FLIGHT, 4_000);
  const groupCommit = durable ? await durableRunsPerSecond(GROUP_COMMIT_MAX_IN_FLIGHT) : { wall: Number.NaN, cpu: Number.NaN };
  const latency = ONLY === 'durable' ? NO_LATENCY : await relationLatency({ quietMs: 0, maxMs: 0 }, LATENCY_SAMPLES);
  const withBurst = ONLY === 'durable' ? NO_LATENCY : await relationLatency(undefined, Math.min(LATENCY_SAMPLES, 30));
  const result: RelationsBenchResult = {
    durableRunsPerSecond: { oneAtATime: Math.round(oneAtATime.wall), groupCommit: Math.round(groupCommit.wall), groupCommitPerCpuSecond: Math.round(groupCommit.cpu) },
    loadAverage: Number(loadavg()[0]!.toFixed(1)),
    fdatasyncUs: Math.round(fsyncUs),
    relationLatencyMs: { p50: Number(latency.p50.toFixed(2)), p99: Number(latency.p99.toFixed(2)), samples: latency.samples },
    relationLatencyWithAgentBurstMs: { p50: Number(withBurst.p50.toFixed(2)), p99: Number(withBurst.p99.toFixed(2)), samples: withBurst.samples },
    node: process.version,
    date: new Date().toISOString(),
  };
  const table = new Table({ head: ['relations and persistence', 'measured', 'target'] });
  table.push(
    ['fdatasync (64 B append)', `${result.fdatasyncUs} µs`, ''],
    [`durable runs/s, one commit at a time (${RUNS.toLocaleString('en')} runs)`, `${result.durableRunsPerSecond.oneAtATime.toLocaleString('en')} runs/s`, ''],
    [`durable runs/s, group commit (${RUNS.toLocaleString('en')} runs)`, `${result.durableRunsPerSecond.groupCommit.toLocaleString('en')} runs/s`, '≥ 20,000 runs/s'],
    ['durable runs per CPU-second of the agent, group commit', `${result.durableRunsPerSecond.groupCommitPerCpuSecond.toLocaleString('en')} runs/s`, `(load average ${result.loadAverage})`],
    [`relation latency p50, commit on A → commit on B (${latency.samples} values)`, `${result.relationLatencyMs.p50} ms`, '≤ 2 ms'],
    ['relation latency p99', `${result.relationLatencyMs.p99} ms`, ''],
    [`relation latency p50 / p99 with the agent's burst window (${withBurst.samples} values)`, `${result.relationLatencyWithAgentBurstMs.p50} / ${result.relationLatencyWithAgentBurstMs.p99} ms`, '(waits for a 200 ms quiet period)'],
  );
  console.log(table.toString());
  const out = join(import.meta.dirname, 'results/relations.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${out}`);
}

await main();
