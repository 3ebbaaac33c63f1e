/**
 * Engine benchmark: per-run overhead as charms grow, throughput, rollback.
 *
 *   pnpm bench:engine            prints a table, writes bench/results/engine.json
 *
 * Overhead: a charm of N fact-only handlers (handler i reads fact fi) plus
 * one event handler that changes one fact per run, so exactly one fact-only
 * handler is due each run. Because handlers are indexed by the facts they
 * read, the cost must stay flat as N grows (target < 50 µs at N = 10,000).
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Table from 'cli-table3';
import { Engine, event, fact, type HandlerSpec, type RunReport } from '../packages/engine/src/index';
import { createKnowledgeBase } from '../packages/engine/src/testing';

interface EngineBenchResult {
  overheadUs: Record<string, number>;
  runsPerSecond: number;
  rollbackMs: number;
  commitOn100kFactsMs: number;
  /** Run time (ms, CPU) of one run changing K facts, by K. */
  kFactsOneRunMs: Record<string, number>;
  /** Run time (ms, CPU) of one run with K handlers queued at once, by K. */
  kHandlersQueuedMs: Record<string, number>;
  keysOn100kMs: { all: number; prefix: number };
  node: string;
  date: string;
}

function charm(n: number): HandlerSpec[] {
  const handlers: HandlerSpec[] = [];
  for (let i = 0; i < n; i++) handlers.push({ name: `h${i}`, when: fact(`f${i}`), run: () => {} });
  let tick = 0;
  handlers.push({ name: 'tick', when: event('tick'), run: (ctx) => ctx.set(`f${tick++ % n}`, tick) });
  return handlers;
}

/**
 * CPU time (user + system) of this process, in µs, for `runs` sequential runs.
 * CPU time rather than wall time: the figure should not move when other
 * processes compete for the machine's two cores.
 */
async function timeRuns(engine: Engine, runs: number, makeEvent: (i: number) => { kind: 'internal'; name: string }): Promise<number> {
  const t0 = process.cpuUsage();
  for (let i = 0; i < runs; i++) await engine.submit(makeEvent(i));
  const d = process.cpuUsage(t0);
  return d.user + d.system;
}

async function overhead(n: number): Promise<number> {
  const engine = new Engine({ handlers: charm(n), historySize: 1 });
  await engine.start();
  const tick = () => ({ kind: 'internal' as const, name: 'tick' });
  await timeRuns(engine, 2000, tick); // warm up the JIT
  const runs = 20_000;
  const us = await timeRuns(engine, runs, tick);
  const last = engine.history().at(-1)!;
  if (last.steps.length !== 2) throw new Error(`expected 2 handlers per run, got ${last.steps.length}`);
  return us / runs;
}

async function throughput(): Promise<number> {
  const handlers: HandlerSpec[] = [];
  for (let i = 0; i < 50; i++) handlers.push({ name: `on-e${i}`, when: event(`e${i}`), run: (ctx) => ctx.set(`g${i}`, (ctx.get<number>(`g${i}`) ?? 0) + 1) });
  for (let i = 0; i < 50; i++) handlers.push({ name: `react-g${i}`, when: fact(`g${i}`), run: () => {} });
  const engine = new Engine({ handlers, historySize: 1 });
  await engine.start();
  const names = Array.from({ length: 50 }, (_, i) => ({ kind: 'internal' as const, name: `e${i}` }));
  await timeRuns(engine, 5000, (i) => names[i % 50]!);
  const runs = 100_000;
  const us = await timeRuns(engine, runs, (i) => names[i % 50]!);
  return runs / (us / 1e6);
}

async function bigKb(): Promise<{ rollbackMs: number; commitMs: number }> {
  const facts: Record<string, number> = {};
  for (let i = 0; i < 100_000; i++) facts[`fact.${i}`] = i;
  const initial = createKnowledgeBase({ facts });
  let fail = true;
  const engine = new Engine({
    initial,
    retry: { limit: 1 },
    historySize: 1,
    handlers: [
      {
        name: 'change-100-then-maybe-fail',
        when: event('go'),
        run: (ctx) => {
          for (let i = 0; i < 100; i++) ctx.set(`fact.${i * 997}`, -i);
          if (fail) throw new Error('fail on purpose');
        },
      },
    ],
  });
  const go = { kind: 'internal' as const, name: 'go' };
  const samples: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t0 = process.cpuUsage();
    const p = engine.submit(go).catch(() => {});
    await engine.whenIdle();
    const d = process.cpuUsage(t0);
    samples.push((d.user + d.system) / 1e3);
    if (engine.knowledge !== initial) throw new Error('rollback did not restore the snapshot');
    engine.skip();
    await p;
  }
  fail = false;
  const commits: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t0 = process.cpuUsage();
    await engine.submit(go);
    const d = process.cpuUsage(t0);
    commits.push((d.user + d.system) / 1e3);
  }
  return { rollbackMs: median(samples.slice(5)), commitMs: median(commits.slice(2)) };
}

/** One run whose single handler changes K facts (staging, retest and commit of a wide run). */
async function kFactsOneRun(k: number): Promise<number> {
  const engine = new Engine({
    historySize: 1,
    handlers: [{ name: 'wide', when: event('go'), run: (ctx) => { const base = ctx.get<number>('round') ?? 0; ctx.set('round', base + 1); for (let i = 0; i < k; i++) ctx.set(`wide.${i}`, base + i); } }],
  });
  return medianRunMs(engine);
}

/** One event that queues K handlers at once (the run queue's cost). */
async function kHandlersQueued(k: number): Promise<number> {
  const handlers: HandlerSpec[] = [];
  // Each writes a fact, so every step is followed by a retest.
  let round = 0;
  for (let i = 0; i < k; i++) handlers.push({ name: `q${i}`, when: event('go'), priority: i % 7, run: (ctx) => ctx.set(`q.${i}`, round) });
  handlers.push({ name: 'round', when: event('go'), priority: 100, run: () => void round++ });
  const engine = new Engine({ handlers, historySize: 1, maxHandlerExecutions: Math.max(1000, k + 1) });
  return medianRunMs(engine, (r) => {
    if (r.steps.length !== k + 1) throw new Error(`expected ${k} steps, got ${r.steps.length}`);
  });
}

/** ctx.keys() (all keys, and under a prefix) on a 100k-fact knowledge base, per call, in a run that also changes one fact. */
async function keysOn100k(): Promise<{ allMs: number; prefixMs: number }> {
  const facts: Record<string, number> = {};
  for (let i = 0; i < 100_000; i++) facts[`fact.${i % 100}.${i}`] = i;
  let mode: 'all' | 'prefix' = 'all';
  let seen = 0;
  const engine = new Engine({
    initial: createKnowledgeBase({ facts }),
    historySize: 1,
    handlers: [{ name: 'list', when: event('go'), run: (ctx) => { ctx.set('tick', (ctx.get<number>('tick') ?? 0) + 1); seen = (mode === 'all' ? ctx.keys() : ctx.keys('fact.42')).length; } }],
  });
  const allMs = await medianRunMs(engine);
  const all = seen;
  mode = 'prefix';
  const prefixMs = await medianRunMs(engine);
  const some = seen;
  if (all !== 100_001) throw new Error(`keys() returned ${all} keys`);
  if (some !== 1000) throw new Error(`keys('fact.42') returned ${some} keys`);
  return { allMs, prefixMs };
}

/** Median CPU time (ms) of one run of the event `go`, over 12 runs less 2 to warm up; `check` sees each run's report. */
async function medianRunMs(engine: Engine, check?: (r: RunReport) => void): Promise<number> {
  const go = { kind: 'internal' as const, name: 'go' };
  const samples: number[] = [];
  for (let i = 0; i < 12; i++) {
    const t0 = process.cpuUsage();
    const r = await engine.submit(go);
    const d = process.cpuUsage(t0);
    check?.(r);
    samples.push((d.user + d.system) / 1e3);
  }
  return median(samples.slice(2));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function runEngineBench(out = 'bench/results/engine.json'): Promise<EngineBenchResult> {
  const only = process.env['ENGINE_BENCH_ONLY']; // e.g. "wide" for the K-sized cases alone
  const overheadUs: Record<string, number> = {};
  let runsPerSecond = NaN;
  let rollbackMs = NaN;
  let commitMs = NaN;
  if (only !== 'wide') {
    for (const n of [10, 100, 1000, 10_000]) overheadUs[String(n)] = await overhead(n);
    runsPerSecond = await throughput();
    ({ rollbackMs, commitMs } = await bigKb());
  }
  const kFactsOneRunMs: Record<string, number> = {};
  for (const k of [1000, 10_000]) kFactsOneRunMs[String(k)] = await kFactsOneRun(k);
  const kHandlersQueuedMs: Record<string, number> = {};
  for (const k of [1000, 10_000]) kHandlersQueuedMs[String(k)] = await kHandlersQueued(k);
  const keys = await keysOn100k();
  const result: EngineBenchResult = {
    overheadUs,
    runsPerSecond,
    rollbackMs,
    commitOn100kFactsMs: commitMs,
    kFactsOneRunMs,
    kHandlersQueuedMs,
    keysOn100kMs: { all: keys.allMs, prefix: keys.prefixMs },
    node: process.version,
    date: new Date().toISOString(),
  };

  const table = new Table({ head: ['metric', 'value', 'target'] });
  for (const [n, us] of Object.entries(overheadUs)) table.push([`overhead per run, ${n} handlers`, `${us.toFixed(1)} µs`, n === '10000' ? '< 50 µs' : 'flat']);
  table.push(['throughput, 100-handler charm, 100k events', `${Math.round(runsPerSecond).toLocaleString('en')} runs/s`, '≥ 50,000 runs/s']);
  table.push(['failed run + rollback, 100 changes, 100k-fact knowledge base', `${rollbackMs.toFixed(3)} ms`, '']);
  table.push(['commit of 100 changes, 100k-fact knowledge base', `${commitMs.toFixed(3)} ms`, '']);
  for (const [k, ms] of Object.entries(kFactsOneRunMs)) table.push([`one run changing ${k} facts`, `${ms.toFixed(2)} ms`, 'O(K)']);
  for (const [k, ms] of Object.entries(kHandlersQueuedMs)) table.push([`one run with ${k} handlers queued at once`, `${ms.toFixed(2)} ms`, 'O(K log K)']);
  table.push(['ctx.keys(), 100k facts (per run)', `${keys.allMs.toFixed(2)} ms`, '']);
  table.push(["ctx.keys('fact.42') → 1,000 of 100k facts (per run)", `${keys.prefixMs.toFixed(2)} ms`, 'O(log N + matches)']);
  console.log(table.toString());
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${out}`);
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await runEngineBench(process.argv.includes('--out') ? process.argv[process.argv.indexOf('--out') + 1] : undefined);
}
