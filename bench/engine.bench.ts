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
import { createKnowledgeBase, Engine, event, fact, type HandlerSpec } from '../packages/engine/src/index';

interface EngineBenchResult {
  overheadUs: Record<string, number>;
  runsPerSecond: number;
  rollbackMs: number;
  commitOn100kFactsMs: number;
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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function runEngineBench(out = 'bench/results/engine.json'): Promise<EngineBenchResult> {
  const overheadUs: Record<string, number> = {};
  for (const n of [10, 100, 1000, 10_000]) overheadUs[String(n)] = await overhead(n);
  const runsPerSecond = await throughput();
  const { rollbackMs, commitMs } = await bigKb();
  const result: EngineBenchResult = { overheadUs, runsPerSecond, rollbackMs, commitOn100kFactsMs: commitMs, node: process.version, date: new Date().toISOString() };

  const table = new Table({ head: ['metric', 'value', 'target'] });
  for (const [n, us] of Object.entries(overheadUs)) table.push([`overhead per run, ${n} handlers`, `${us.toFixed(1)} µs`, n === '10000' ? '< 50 µs' : 'flat']);
  table.push(['throughput, 100-handler charm, 100k events', `${Math.round(runsPerSecond).toLocaleString('en')} runs/s`, '≥ 50,000 runs/s']);
  table.push(['failed run + rollback, 100 changes, 100k-fact knowledge base', `${rollbackMs.toFixed(3)} ms`, '']);
  table.push(['commit of 100 changes, 100k-fact knowledge base', `${commitMs.toFixed(3)} ms`, '']);
  console.log(table.toString());
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${out}`);
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await runEngineBench(process.argv.includes('--out') ? process.argv[process.argv.indexOf('--out') + 1] : undefined);
}
