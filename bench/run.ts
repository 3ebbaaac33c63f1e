/**
 * `pnpm bench`: every benchmark, one after the other, each printing its table
 * and writing its JSON under bench/results/. `pnpm bench -- engine` runs one.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const SUITES: Record<string, string> = {
  engine: 'bench/engine.bench.ts',
  gossip: 'bench/gossip.bench.ts',
  relations: 'bench/relations.bench.ts',
  footprint: 'bench/footprint.bench.ts',
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !(w in SUITES));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')}; choose from ${Object.keys(SUITES).join(', ')}`);
  process.exit(2);
}
let failed = false;
for (const [name, file] of Object.entries(SUITES)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  if (!existsSync(file)) {
    console.log(`(${name}: ${file} not present, skipped)`);
    continue;
  }
  console.log(`\n== ${name} ==`);
  // Each section in its own process (its memory and CPU figures are its own), run the way this
  // runner was (`pnpm bench` starts it with tsx): the sections read files beside their sources
  // through import.meta, so they run as sources rather than as a bundle compiled elsewhere.
  const r = spawnSync(process.execPath, [...process.execArgv, file], { stdio: 'inherit' });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
