#!/usr/bin/env node
// `pnpm release`: writes dist/rhizome-<version>.tgz, one npm package that
// installs anywhere with `npm install -g ./dist/rhizome-<version>.tgz`:
//
//   rhizome/bin/rhizome.cjs            the `rhizome` command (the compiled CLI, one process)
//   rhizome/lib/*.js, *.d.ts           what charms import: rhizome, rhizome/engine,
//                                      rhizome/relations, rhizome/gossip, rhizome/zod
//   rhizome/node_modules/@rhizome/*    the framework packages, compiled (bundled
//                                      dependencies: they are not on the registry)
//
// Its dependencies are the framework's real npm dependencies at the exact
// versions the workspace pins (no `workspace:` ranges), plus @types/node so
// a charm folder type-checks. Run `pnpm build` first (`pnpm release` does).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGES = ['clock', 'engine', 'gossip', 'relations', 'agent'];
/** Subpaths of the rhizome package -> the module they re-export. */
const LIBS = {
  index: '@rhizome/agent',
  cli: '@rhizome/agent/cli',
  testing: '@rhizome/agent/testing',
  engine: '@rhizome/engine',
  'engine/testing': '@rhizome/engine/testing',
  relations: '@rhizome/relations',
  'relations/testing': '@rhizome/relations/testing',
  gossip: '@rhizome/gossip',
  zod: 'zod',
};
const json = (file) => JSON.parse(readFileSync(file, 'utf8'));

/**
 * A package's public subpaths (`.`, `./testing`, ...) as compiled files:
 * src/<name>.ts is built to dist/<name>.js with declarations in
 * dist/src/<name>.d.ts. `./internal/*` stays closed.
 */
function releasedExports(pkg) {
  const out = {};
  for (const [sub, target] of Object.entries(pkg.exports ?? {})) {
    if (target === null || typeof target !== 'object') continue;
    const name = /^\.\/src\/(.+)\.ts$/.exec(target.types)?.[1];
    if (!name) fail(`${pkg.name}: export ${sub} does not point at src/<name>.ts`);
    out[sub] = { types: `./dist/src/${name}.d.ts`, default: `./dist/${name}.js` };
  }
  out['./package.json'] = './package.json';
  return out;
}
const root = json(join(ROOT, 'package.json'));
const version = root.version;
const STAGE = join(ROOT, 'dist', 'release', 'rhizome');

function fail(message) {
  process.stderr.write(`release: ${message}\n`);
  process.exit(1);
}

await rm(join(ROOT, 'dist', 'release'), { recursive: true, force: true });
await mkdir(STAGE, { recursive: true });

const dependencies = {};
for (const name of PACKAGES) {
  const dir = join(ROOT, 'packages', name);
  const pkg = json(join(dir, 'package.json'));
  if (!existsSync(join(dir, 'dist', 'index.js')) || !existsSync(join(dir, 'dist', 'src', 'index.d.ts'))) {
    fail(`packages/${name}/dist is not built; run 'pnpm build' first`);
  }
  for (const [dep, range] of Object.entries(pkg.dependencies ?? {})) {
    if (dep.startsWith('@rhizome/')) continue;
    if (!/^\d+\.\d+\.\d+/.test(range)) fail(`${pkg.name} depends on ${dep}@${range}: pin an exact version`);
    if (dependencies[dep] !== undefined && dependencies[dep] !== range) fail(`${dep} is pinned at ${dependencies[dep]} and ${range}`);
    dependencies[dep] = range;
  }
  const out = join(STAGE, 'node_modules', '@rhizome', name);
  // The compiled JavaScript and the declarations; not the tests' declarations nor build info.
  await cp(join(dir, 'dist'), join(out, 'dist'), {
    recursive: true,
    filter: (src) => src !== join(dir, 'dist', 'test') && !src.startsWith(`${join(dir, 'dist', 'test')}/`) && !src.endsWith('.tsbuildinfo') && !src.endsWith('.d.ts.map'),
  });
  if (existsSync(join(dir, 'README.md'))) await cp(join(dir, 'README.md'), join(out, 'README.md'));
  await writeFile(
    join(out, 'package.json'),
    `${JSON.stringify(
      {
        name: pkg.name,
        version: pkg.version,
        type: 'module',
        exports: releasedExports(pkg),
      },
      null,
      2,
    )}\n`,
  );
}
dependencies['@types/node'] = root.devDependencies['@types/node'];
// npm packs a bundled dependency only when it is also a dependency (the copy inside satisfies it).
for (const name of PACKAGES) dependencies[`@rhizome/${name}`] = version;

await mkdir(join(STAGE, 'lib'));
const exportsMap = { './package.json': './package.json' };
for (const [lib, target] of Object.entries(LIBS)) {
  await mkdir(dirname(join(STAGE, 'lib', lib)), { recursive: true });
  await writeFile(join(STAGE, 'lib', `${lib}.js`), `export * from '${target}';\n`);
  await writeFile(join(STAGE, 'lib', `${lib}.d.ts`), `export * from '${target}';\n`);
  exportsMap[lib === 'index' ? '.' : `./${lib}`] = { types: `./lib/${lib}.d.ts`, default: `./lib/${lib}.js` };
}
await mkdir(join(STAGE, 'bin'));
await writeFile(
  join(STAGE, 'bin', 'rhizome.cjs'),
  `#!/usr/bin/env node
// The \`rhizome\` command: the compiled CLI of the bundled @rhizome/agent, in this process
// (CommonJS, so a quick command never starts Node's ES module loader).
'use strict';
require(require('node:path').join(require.resolve('@rhizome/agent/package.json'), '..', 'dist', 'rhizome.cjs'));
`,
  { mode: 0o755 },
);
await cp(join(ROOT, 'README.md'), join(STAGE, 'README.md'));
await writeFile(
  join(STAGE, 'package.json'),
  `${JSON.stringify(
    {
      name: 'rhizome',
      version,
      description: root.description,
      type: 'module',
      engines: root.engines,
      bin: { rhizome: 'bin/rhizome.cjs' },
      exports: exportsMap,
      files: ['bin', 'lib', 'README.md'],
      dependencies: Object.fromEntries(Object.entries(dependencies).sort(([a], [b]) => (a < b ? -1 : 1))),
      bundleDependencies: PACKAGES.map((p) => `@rhizome/${p}`),
    },
    null,
    2,
  )}\n`,
);

execFileSync('npm', ['pack', '--silent', '--pack-destination', join(ROOT, 'dist')], { cwd: STAGE, stdio: ['ignore', 'ignore', 'inherit'] });
const tgz = join(ROOT, 'dist', `rhizome-${version}.tgz`);
if (!existsSync(tgz)) fail(`npm pack did not write ${tgz}`);
const files = (await readdir(STAGE, { recursive: true })).length;
process.stdout.write(`${tgz} (${Math.round((await stat(tgz)).size / 1024)} KiB, ${files} files staged)\n`);
