#!/usr/bin/env node
// `pnpm build`, step 2 (step 1 is `tsc -b`, which type-checks and writes the
// declaration files): compiles every framework package to runnable ESM
// JavaScript with esbuild, one bundle per package in packages/<name>/dist/.
//
// Why esbuild and not tsc's JavaScript: the sources use extensionless
// relative imports (moduleResolution "bundler"), which Node's ESM loader
// does not resolve. Every bare import (npm dependencies and the other
// @rhizome/* packages) stays external, so each framework package is loaded
// once per process, whoever imports it (the agent, or a compiled charm).
// Dynamic `import()`s become separate chunks: a CLI command loads only what
// it uses.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Package folder -> entry points (relative to the package) and their output names. */
const PACKAGES = {
  clock: { index: 'src/index.ts' },
  engine: { index: 'src/index.ts', testing: 'src/testing.ts' },
  gossip: { index: 'src/index.ts', testing: 'src/testing.ts' },
  relations: { index: 'src/index.ts', testing: 'src/testing.ts' },
  // supervisor: copied to machines by SSH deployments (deploy/release.ts).
  agent: { index: 'src/index.ts', cli: 'src/cli.ts', testing: 'src/testing.ts', bin: 'src/cli/bin.ts', supervisor: 'src/deploy/supervisor-main.ts' },
};

/**
 * Dependencies compiled into the agent package's dist instead of being
 * loaded from node_modules at run time: what every CLI command loads
 * (argument parsing, tables, YAML). yaml alone is 72 CommonJS files under
 * Node's "node" condition; resolving and compiling them one by one was a
 * large part of `rhizome status`'s start-up. zod is compiled in (tree-shaken)
 * because its package entry loads every locale: ~130 ES modules an agent
 * resolved and compiled before joining the mesh. Charms bundle their own
 * zod already; zod's `instanceof` goes by traits, so copies interoperate.
 * pino (agent) and ws (gossip) are CommonJS: imported from an ES module,
 * every file of theirs went through Node's CommonJS export lexer, ~15% of an
 * agent's start-up CPU; compiled in, they are plain functions in the bundle.
 * Everything else stays external.
 */
const INLINE = { agent: ['yaml', 'commander', 'cli-table3', 'picocolors', 'pino', 'pino-roll', 'zod', 'string-width'], relations: ['zod'], gossip: ['ws'] };
/** Optional native helpers the inlined code require()s inside try/catch: loaded from node_modules when installed. */
const OPTIONAL = ['bufferutil', 'utf-8-validate'];
// Inlined CommonJS modules call require() for Node's built-ins: give the ES modules one.
const REQUIRE_BANNER = "import { createRequire as __rhizomeCreateRequire } from 'node:module'; const require = __rhizomeCreateRequire(import.meta.url);";

/**
 * pino-roll calls `require('date-fns')` for five functions; date-fns'
 * CommonJS index is 300 modules (540 KB) that cannot be tree-shaken, all
 * compiled at every agent start. Give pino-roll the five functions from
 * date-fns' own per-function entry points instead (the same code).
 */
const DATE_FNS_SUBSET = ['addDays', 'addHours', 'isValid'];
/**
 * pino-roll calls date-fns' `format` and `parse` only for its `dateFormat`
 * option (dated file names), which the agent does not use (log-file.ts):
 * `parse` alone is 36 parser modules and a locale, ~150 KB of code every
 * agent held. They fail loudly if that option is ever given.
 */
const DATE_FNS_UNUSED = ['format', 'parse'];
const dateFnsSubset = {
  name: 'date-fns-subset',
  setup(b) {
    b.onResolve({ filter: /^date-fns$/ }, (args) => ({ path: args.resolveDir, namespace: 'date-fns-subset' }));
    b.onLoad({ filter: /.*/, namespace: 'date-fns-subset' }, (args) => ({
      contents: [
        ...DATE_FNS_SUBSET.map((f) => `export { ${f} } from 'date-fns/${f}';`),
        ...DATE_FNS_UNUSED.map((f) => `export function ${f}() { throw new Error("pino-roll's dateFormat option is not supported by rhizome's build (scripts/build.mjs DATE_FNS_UNUSED)"); }`),
      ].join('\n'),
      resolveDir: args.path,
      loader: 'js',
    }));
  },
};

/**
 * esbuild escapes non-ASCII characters in strings and identifiers but keeps
 * the comments it carries over as they are; one `—` in a comment makes V8
 * hold the whole file's source as a two-byte string (twice the heap, for as
 * long as the process runs). Escaping them leaves comments readable enough.
 */
async function asciiOnly(files) {
  await Promise.all(
    files.map(async (file) => {
      const text = await readFile(file, 'utf8');
      if (!/[^\x00-\x7f]/.test(text)) return;
      // Per UTF-16 unit (no `u` flag): an astral character becomes its surrogate pair's two escapes.
      await writeFile(file, text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
    }),
  );
}

/**
 * commander requires node:child_process when it loads, for executable
 * subcommands this CLI does not have; loading it (and the net, dgram and
 * stream modules behind it) was 3% of `rhizome status`. Its one use,
 * `childProcess.spawn`, now requires it when called.
 */
const COMMANDER_CHILD_PROCESS = "const childProcess = require('node:child_process');";
const lazyChildProcess = {
  name: 'commander-lazy-child-process',
  setup(b) {
    b.onLoad({ filter: /[\\/]commander[\\/]lib[\\/]command\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes(COMMANDER_CHILD_PROCESS)) throw new Error(`${args.path}: commander changed; revisit lazyChildProcess in scripts/build.mjs`);
      return { contents: text.replace(COMMANDER_CHILD_PROCESS, "const childProcess = { spawn: (...args) => require('node:child_process').spawn(...args) };"), loader: 'js' };
    });
  },
};

/**
 * Node built-ins that inlined CommonJS dependencies require when they load
 * but that an agent never calls: ws loads https and tls (for wss:// clients)
 * and zlib (for permessage-deflate), while gossip dials ws:// with
 * compression off; pino and thread-stream load worker_threads for transports
 * the agent does not use. Each is ~0.2-0.7 MB resident per agent once
 * loaded. The edits make them load on first use: a module-level
 * `const x = require('m')` becomes a proxy that requires `m` when a property
 * is read, and a destructured one is read where it is used. Each edit must
 * apply exactly once, so an upgrade that moves the code fails the build.
 */
const LAZY_BUILTINS = [
  { file: /[\\/]ws[\\/]lib[\\/]websocket\.js$/, edits: [["const https = require('https');", "const https = __lazyBuiltin('https');"], ["const tls = require('tls');", "const tls = __lazyBuiltin('tls');"]] },
  { file: /[\\/]ws[\\/]lib[\\/]permessage-deflate\.js$/, edits: [["const zlib = require('zlib');", "const zlib = __lazyBuiltin('zlib');"]] },
  { file: /[\\/]thread-stream[\\/]index\.js$/, edits: [["const { Worker } = require('worker_threads')", ''], ['new Worker(', "new (require('worker_threads').Worker)("]] },
  {
    file: /[\\/]pino[\\/]lib[\\/]tools\.js$/,
    edits: [["const { isMainThread } = require('worker_threads')", ''], ['if (!opts.sync && isMainThread) {', "if (!opts.sync && require('worker_threads').isMainThread) {"]],
  },
];
const LAZY_BUILTIN_HELPER = 'function __lazyBuiltin(name) { let m; return new Proxy({}, { get: (_, key) => (m ??= require(name))[key] }); }\n';
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    for (const { file, edits } of LAZY_BUILTINS) {
      b.onLoad({ filter: file }, async (args) => {
        let text = await readFile(args.path, 'utf8');
        for (const [from, to] of edits) {
          if (text.split(from).length !== 2) throw new Error(`${args.path}: expected "${from}" once; the dependency changed, revisit LAZY_BUILTINS in scripts/build.mjs`);
          text = text.replace(from, to);
        }
        return { contents: text.includes('__lazyBuiltin(') ? LAZY_BUILTIN_HELPER + text : text, loader: 'js' };
      });
    }
  },
};

function externals(dir, name) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const inline = new Set(INLINE[name] ?? []);
  const deps = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.devDependencies ?? {})].filter((d) => !inline.has(d));
  return [...deps, ...OPTIONAL].flatMap((d) => [d, `${d}/*`]);
}

/**
 * Whitespace and syntax minified, names kept (stack traces stay readable;
 * `node --enable-source-maps` maps them to the sources through the linked
 * maps), as the agent bundle copied to SSH machines is (deploy/release.ts).
 * V8 keeps every loaded module's source text for lazy compilation: 1.97 MB
 * of JavaScript became 1.33 MB, ~0.5 MB less heap in each agent.
 */
const MINIFY = { minifyWhitespace: true, minifySyntax: true };
const started = Date.now();
await Promise.all(
  Object.entries(PACKAGES).map(async ([name, entries]) => {
    const dir = join(ROOT, 'packages', name);
    // Only esbuild's outputs: dist/src (tsc's declarations) is tsc's.
    await rm(join(dir, 'dist', 'chunks'), { recursive: true, force: true });
    const result = await build({
      absWorkingDir: dir,
      metafile: true,
      entryPoints: Object.fromEntries(Object.entries(entries).map(([out, src]) => [out, join(dir, src)])),
      outdir: join(dir, 'dist'),
      chunkNames: 'chunks/[name]-[hash]',
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      ...(INLINE[name] ? { external: externals(dir, name), banner: { js: REQUIRE_BANNER }, plugins: [dateFnsSubset, lazyChildProcess, lazyBuiltins] } : { packages: 'external' }),
      sourcemap: 'linked',
      ...MINIFY,
      logLevel: 'warning',
    });
    await asciiOnly(Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js')).map((f) => join(dir, f)));
  }),
);

/**
 * The `rhizome` command itself: dist/rhizome.cjs (launcher.ts) and
 * dist/quick.cjs (quick.ts, the commands an operator runs all day, as one
 * file), CommonJS so a CLI process never starts Node's ES module loader for
 * them (~10 ms), and one file so nothing is resolved (~8 ms). Every other
 * command, and the agent, go on to the ES module dist/bin.js. Dependencies
 * as in the agent's ES build; yaml stays outside (only `status --format
 * yaml` loads it, from node_modules).
 */
const QUICK_FILES = /^\.\/(bin\.js|quick\.cjs)$/;
const besideLauncher = {
  name: 'beside-launcher',
  setup(b) {
    b.onResolve({ filter: QUICK_FILES }, (args) => ({ path: args.path, external: true }));
  },
};
{
  const dir = join(ROOT, 'packages', 'agent');
  const inline = new Set(INLINE.agent.filter((d) => d !== 'yaml'));
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const external = [...Object.keys(pkg.dependencies ?? {}), ...OPTIONAL].filter((d) => !inline.has(d)).flatMap((d) => [d, `${d}/*`]);
  const result = await build({
    absWorkingDir: dir,
    metafile: true,
    entryPoints: { rhizome: join(dir, 'src/cli/launcher.ts'), quick: join(dir, 'src/cli/quick.ts') },
    outdir: join(dir, 'dist'),
    outExtension: { '.js': '.cjs' },
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    external,
    // runtime.ts finds the package from its own URL.
    define: { 'import.meta.url': '__rhizomeModuleUrl' },
    banner: { js: "const __rhizomeModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
    plugins: [lazyChildProcess, besideLauncher],
    sourcemap: 'linked',
    ...MINIFY,
    logLevel: 'warning',
  });
  const outputs = Object.entries(result.metafile.outputs).filter(([f]) => f.endsWith('.cjs'));
  for (const [file, out] of outputs) {
    const framework = out.imports.filter((i) => i.external && i.path.startsWith('@rhizome/')).map((i) => i.path);
    if (framework.length > 0) throw new Error(`${file} imports ${framework.join(', ')}: the quick CLI must not load the framework packages (see src/cli/quick.ts)`);
  }
  await asciiOnly(outputs.map(([f]) => join(dir, f)));
}
process.stdout.write(`built ${Object.keys(PACKAGES).map((p) => `@rhizome/${p}`).join(', ')} in ${Date.now() - started} ms\n`);
