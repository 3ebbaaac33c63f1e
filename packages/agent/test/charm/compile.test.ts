/**
 * Charms compiled ahead of time (charm/compile.ts) and the compiled CLI's
 * entry points. Needs `pnpm build` (the framework's dist/ is what compiled
 * charms import and what the spawned processes run).
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentError, deploy } from '../../src/index';
import { buildCharm } from '../../src/charm/compile';
import { agentPackageRoot, cliEntry } from '../../src/runtime';

const FIXTURES = join(import.meta.dirname, '../fixtures');
let tmp = '';

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'rz-charm-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('charm compilation', () => {
  it('refuses a charm with a type error before any agent starts, with the compiler message', async () => {
    const home = join(tmp, 'home');
    const bundle = join(tmp, 'bad.yaml');
    await writeFile(bundle, `name: bad\nservices:\n  bad:\n    charm: ${join(FIXTURES, 'charms/type-error')}\n`);
    // A fresh cache: the check really runs (a cached pass would hide it).
    const err = await deploy(bundle, { home, charmCache: join(tmp, 'cache-bad'), wait: false }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('AGENT_ERR_CHARM_TYPE');
    expect((err as Error).message).toMatch(/services\.bad\.charm: charm .*type-error\/charm\.ts does not type-check/);
    expect((err as Error).message).toMatch(/charm\.ts\(3,7\): error TS2322: Type 'string' is not assignable to type 'number'/);
    // Nothing started, nothing recorded.
    expect(await readdir(home).catch(() => [])).toEqual([]);
  });

  it('caches by content hash, keeps the framework external and import.meta.url pointing at the source', async () => {
    // No node_modules: the framework imports are resolved to this CLI's copy, not from the folder.
    const dir = join(tmp, 'plain');
    await mkdir(join(dir, 'src'), { recursive: true });
    await writeFile(join(dir, 'src', 'where.ts'), "export const PLAYBOOK = new URL('../playbook/site.yml', import.meta.url).href;\n");
    await writeFile(
      join(dir, 'charm.ts'),
      "import { defineCharm } from '@rhizome/agent';\nimport { PLAYBOOK } from './src/where';\nexport const SELF = import.meta.url;\nexport default defineCharm({ metadata: { name: 'plain' }, handlers: () => [{ name: 'p', atStartup: true, run: (ctx) => ctx.setStatus('active', PLAYBOOK) }] });\n",
    );
    const cacheDir = join(tmp, 'cache');
    const first = await buildCharm(dir, { cacheDir, typecheck: false });
    expect(first.cached).toBe(false);
    const again = await buildCharm(dir, { cacheDir, typecheck: false });
    expect(again).toMatchObject({ cached: true, module: first.module, hash: first.hash });
    const code = await readFile(first.module, 'utf8');
    // The framework is the copy this CLI runs, imported by absolute URL, never bundled in.
    expect(code).toContain(pathToFileURL(join(agentPackageRoot(), 'dist/index.js')).href);
    expect(code).not.toMatch(/function defineCharm\b/);
    // import.meta.url still means each source file: a playbook next to the code is found from the cache.
    expect(code).toContain(JSON.stringify(pathToFileURL(join(dir, 'charm.ts')).href));
    expect(code).toContain(JSON.stringify(pathToFileURL(join(dir, 'src', 'where.ts')).href));
    const mod = (await import(pathToFileURL(first.module).href)) as { SELF: string };
    expect(mod.SELF).toBe(pathToFileURL(join(dir, 'charm.ts')).href);
    // A change that leaves the JavaScript alone (a type) is still a new build (it must be type-checked).
    await writeFile(join(dir, 'charm.ts'), `${await readFile(join(dir, 'charm.ts'), 'utf8')}\nexport type Unused = { a: number };\n`);
    const changed = await buildCharm(dir, { cacheDir, typecheck: false });
    expect(changed.hash).not.toBe(first.hash);
    expect(changed.cached).toBe(false);
  });

  it('builds the same charm twice at once in one process (upgrade-charm did: a rename of the shared temp file failed)', async () => {
    const dir = join(tmp, 'twice');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'charm.ts'), "import { defineCharm } from '@rhizome/agent';\nexport default defineCharm({ metadata: { name: 'twice' }, handlers: () => [] });\n");
    const cacheDir = join(tmp, 'cache-twice');
    const builds = await Promise.all([0, 1, 2, 3].map(() => buildCharm(dir, { cacheDir, typecheck: false })));
    expect(new Set(builds.map((b) => b.module)).size).toBe(1);
    expect(await readFile(builds[0]!.module, 'utf8')).toContain('twice');
  });

  it('writes the module in ASCII, so V8 holds its source one byte a character; strings keep their text', async () => {
    const dir = join(tmp, 'unicode');
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'charm.ts'),
      "import { defineCharm } from '@rhizome/agent';\nexport function greet(long = true): string {\n  return long\n    ? // caf\u00e9 \u2014 esbuild keeps a comment inside an expression, \u{1F680} too\n      'h\u00e9llo \u2014 \u{1F680}'\n    : '';\n}\nexport default defineCharm({ metadata: { name: 'unicode' }, handlers: () => [] });\n",
    );
    const built = await buildCharm(dir, { cacheDir: join(tmp, 'cache-unicode'), typecheck: false });
    const code = await readFile(built.module, 'utf8');
    expect(code).toMatch(/caf\\u00e9 \\u2014 esbuild keeps a comment/);
    expect(code).not.toMatch(/[^\x00-\x7f]/);
    const mod = (await import(pathToFileURL(built.module).href)) as { greet: () => string };
    expect(mod.greet()).toBe('h\u00e9llo \u2014 \u{1F680}');
  });

  it('names the file and line of a syntax error', async () => {
    await expect(buildCharm(join(FIXTURES, 'charms/broken-syntax'), { cacheDir: join(tmp, 'cache'), typecheck: false })).rejects.toThrow(/cannot compile charm .*broken-syntax\/charm\.ts:\ncharm\.ts:\d+:\d+: /);
  });
});

describe('compiled entry points', () => {
  it('loading the agent package index (as every charm does) loads no deployment machinery', async () => {
    // Agents load the index for defineCharm; deploy's functions load their modules on first call.
    // A module resolve hook lists every file the import loads; their source maps name the sources in them.
    const list = join(tmp, 'resolved.txt');
    const hook = join(tmp, 'hook.mjs');
    await writeFile(hook, `import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(list)}, r.url + '\\n'); return r; }\n`);
    const index = pathToFileURL(join(agentPackageRoot(), 'dist/index.js')).href;
    const script = `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(hook).href)}); const m = await import(${JSON.stringify(index)}); console.log(typeof m.deploy, typeof m.runCommand);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('function function\n');
    const files = (await readFile(list, 'utf8')).split('\n').filter((u) => u.startsWith('file:') && u.includes('/agent/dist/'));
    expect(files.length).toBeGreaterThan(3);
    const maps = await Promise.all(files.map(async (u) => JSON.parse(await readFile(new URL(`${u}.map`), 'utf8')) as { sources: string[] }));
    const sources = maps.flatMap((m) => m.sources.map((f) => f.replace(/^(\.\.\/)+/, '')));
    expect(sources).toContain('src/charm/define.ts');
    for (const mod of ['deploy/deploy.ts', 'deploy/unit-commands.ts', 'deploy/destroy.ts', 'deploy/placement.ts', 'deploy/unit-process.ts', 'deploy/ssh.ts', 'deploy/remote.ts', 'deploy/converge.ts']) expect(sources).not.toContain(`src/${mod}`);
  });

  it('loading the agent package index in a process whose argv looks like the CLI does not run the CLI', async () => {
    const home = join(tmp, 'argv-home');
    await mkdir(join(home, 'live'), { recursive: true });
    await writeFile(join(home, 'live', 'deployment.json'), '{}');
    const index = pathToFileURL(join(agentPackageRoot(), 'dist/index.js')).href;
    // argv[1] as the CLI's entry used to be recognised (cli/main.ts), and a command that would act.
    const script = `process.argv[1] = '/opt/rhizome/packages/agent/src/cli/main.ts'; const m = await import(${JSON.stringify(index)}); console.log(typeof m.defineCharm);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, '--', '--home', home, 'destroy', 'live'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('function\n');
    expect(r.status).toBe(0);
    expect(await readdir(home)).toEqual(['live']);
  });

  it('rhizome status loads only what it uses: the quick CLI file, no charm compiler, agent runtime or dependency', async () => {
    // Every CommonJS module a process loads (ESM imports of CommonJS packages included) is in require.cache.
    const dump = join(tmp, 'loaded.txt');
    const preload = join(tmp, 'dump.cjs');
    // Beside them, whether Node's ES module loader started (it costs ~10 ms; the quick CLI is CommonJS to avoid it).
    await writeFile(preload, "process.on('exit', () => require('fs').writeFileSync(process.env.RZ_DUMP, [...Object.keys(require.cache), ...process.moduleLoadList.filter((m) => m.endsWith('esm/loader'))].join('\\n')));\n");
    const r = spawnSync(process.execPath, ['--require', preload, cliEntry(), '--home', join(tmp, 'nothing'), 'status'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, RZ_DUMP: dump },
    });
    expect(r.stderr).toMatch(/no deployment found/);
    const loaded = (await readFile(dump, 'utf8')).split('\n').filter((f) => f !== preload);
    expect(loaded).toEqual([cliEntry(), join(agentPackageRoot(), 'dist/quick.cjs')]);
  });
});
