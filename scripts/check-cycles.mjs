#!/usr/bin/env node
// `pnpm lint`, step 2: no import cycles inside a framework package.
//
// A cycle makes load order matter (a module sees another's exports as
// undefined while both load) and usually means two files share one job.
// Type-only imports count too: they are erased at run time, but a type
// cycle is the same tangle of responsibilities. Reads every packages/*/src
// file's relative imports (static `import`/`export ... from` and dynamic
// `import()`) and reports each strongly connected component as a cycle.
// `node scripts/check-cycles.mjs [ROOT]` checks ROOT/packages (default: this repository).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function files(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files(p, out);
    else if (/\.(ts|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function target(from, spec) {
  const base = resolve(dirname(from), spec.replace(/\.js$/, ''));
  for (const c of [base, `${base}.ts`, `${base}.mts`, join(base, 'index.ts')]) if (existsSync(c) && statSync(c).isFile()) return c;
  return undefined;
}

/** Tarjan's strongly connected components; returns those with a cycle. */
function cycles(graph) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const out = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const scc = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? new Set()).has(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

let found = 0;
for (const pkg of readdirSync(join(ROOT, 'packages')).sort()) {
  const src = join(ROOT, 'packages', pkg, 'src');
  if (!existsSync(src)) continue;
  const graph = new Map();
  for (const f of files(src)) {
    const deps = new Set();
    for (const m of readFileSync(f, 'utf8').matchAll(IMPORT)) {
      const t = target(f, m[1] ?? m[2]);
      if (t) deps.add(t);
    }
    graph.set(f, deps);
  }
  for (const scc of cycles(graph)) {
    found++;
    process.stderr.write(`import cycle in @rhizome/${pkg}: ${scc.map((f) => relative(src, f)).join(' <-> ')}\n`);
  }
}
if (found > 0) {
  process.stderr.write(`${found} import cycle(s): move what both sides need into a module of its own (an interface, a types file)\n`);
  process.exit(1);
}
process.stdout.write('no import cycles\n');
