/**
 * The release as a new user gets it: `pnpm release` packs
 * dist/rhizome-<version>.tgz, npm installs it into an empty prefix outside
 * the repository, and that `rhizome` scaffolds a charm in a folder of its
 * own, whose scenario test passes and which deploys and converges.
 *
 * Needs `pnpm build` first (scripts/test.sh does) and npm with the npm
 * registry reachable (the package's dependencies are real npm packages;
 * npm's cache makes later runs offline). vitest is linked into the charm
 * folder from this workspace, standing in for the `npm install` that would
 * fetch it: the charm itself resolves only the installed rhizome.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const VERSION = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const hasNpm = spawnSync('npm', ['--version'], { encoding: 'utf8' }).status === 0;
let tmp = '';
let deployed = false;

const env = (): NodeJS.ProcessEnv => {
  // Nothing of the workspace leaks in: no NODE_PATH, a private charm cache and home.
  const { NODE_PATH: _drop, ...rest } = process.env;
  return { ...rest, RHIZOME_HOME: join(tmp, 'home'), RHIZOME_CHARM_CACHE: join(tmp, 'charm-cache') };
};
const rhizome = (args: string[], cwd: string) => run(join(tmp, 'prefix', 'bin', 'rhizome'), args, { cwd, env: env(), timeout: 120_000 });

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'rz-release-'));
});
afterAll(async () => {
  if (deployed) await rhizome(['destroy', 'hello'], tmp).catch(() => undefined);
  await rm(tmp, { recursive: true, force: true });
});

describe.skipIf(!hasNpm)('the release tarball', () => {
  it('installs with npm outside the repository; init charm, its test, deploy, converge', { timeout: 480_000 }, async () => {
    const packed = await run(process.execPath, [join(ROOT, 'scripts/release.mjs')], { cwd: ROOT, timeout: 120_000 });
    const tgz = join(ROOT, 'dist', `rhizome-${VERSION}.tgz`);
    expect(packed.stdout).toContain(tgz);
    const started = Date.now();
    await run('npm', ['install', '-g', '--prefix', join(tmp, 'prefix'), '--no-audit', '--no-fund', '--prefer-offline', tgz], { cwd: tmp, env: env(), timeout: 300_000 });
    console.log(`npm install -g of ${tgz}: ${Date.now() - started} ms`);
    const installed = join(tmp, 'prefix', 'lib', 'node_modules', 'rhizome');
    const pkg = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(Object.values(pkg.dependencies).filter((r) => r.startsWith('workspace:'))).toEqual([]);

    expect((await rhizome(['version'], tmp)).stdout).toBe(`rhizome ${VERSION} (node ${process.version})\n`);

    // Every public entry loads from the install (the bundled @rhizome/clock included); insides stay closed.
    const entries = ['rhizome', 'rhizome/cli', 'rhizome/testing', 'rhizome/engine', 'rhizome/engine/testing', 'rhizome/relations', 'rhizome/relations/testing', 'rhizome/gossip', '@rhizome/clock'];
    const probe = `const loaded = {};
for (const e of ${JSON.stringify(entries)}) loaded[e] = Object.keys(await import(e)).length;
let refused = 'loaded';
try { await import('@rhizome/engine/internal/run'); } catch (err) { refused = err.code; }
console.log(JSON.stringify({ loaded, refused }));`;
    const probed = JSON.parse((await run(process.execPath, ['--input-type=module', '-e', probe], { cwd: installed, env: env(), timeout: 60_000 })).stdout) as {
      loaded: Record<string, number>;
      refused: string;
    };
    for (const e of entries) expect(probed.loaded[e], e).toBeGreaterThan(0);
    expect(probed.refused).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');

    const init = await rhizome(['init', 'charm', 'hello'], tmp);
    expect(init.stdout).toContain(`created ${join(tmp, 'hello')}`);
    const dir = join(tmp, 'hello');
    expect(realpathSync(join(dir, 'node_modules', 'rhizome'))).toBe(realpathSync(installed));
    // The folder's tests run with vitest against the installed rhizome.
    await symlink(realpathSync(join(ROOT, 'node_modules', 'vitest')), join(dir, 'node_modules', 'vitest'), 'dir');
    const test = await run(process.execPath, [join(dir, 'node_modules', 'vitest', 'vitest.mjs'), 'run'], { cwd: dir, env: env(), timeout: 120_000 });
    expect(test.stdout).toMatch(/1 passed/);

    // A type error is refused with the compiler's message, by the installed CLI.
    const good = await readFile(join(dir, 'charm.ts'), 'utf8');
    await writeFile(join(dir, 'charm.ts'), `${good}\nexport const wrong: number = 'text';\n`);
    const refused = await rhizome(['build-charm', '.'], dir).then(
      () => undefined,
      (e: { code?: number; stderr?: string }) => e,
    );
    expect(refused?.code).toBe(1);
    expect(refused?.stderr).toMatch(/does not type-check[\s\S]*error TS2322/);
    await writeFile(join(dir, 'charm.ts'), good);

    deployed = true;
    const d = await rhizome(['deploy', 'bundle.yaml'], dir);
    expect(`${d.stdout}${d.stderr}`).toMatch(/converged in \d+/);
    const status = JSON.parse((await rhizome(['--json', 'status'], dir)).stdout) as unknown;
    expect(JSON.stringify(status)).toContain('says \\"hello\\"');
    // The scaffold reacts to its option: 'rhizome config' rewrites the file and the status.
    await rhizome(['config', 'hello', 'message=bye'], dir);
    expect(JSON.stringify(JSON.parse((await rhizome(['--json', 'status'], dir)).stdout))).toContain('says \\"bye\\"');
    expect(await readFile(join(tmp, 'home', 'hello', 'hello-0', 'unit', 'message.txt'), 'utf8')).toBe('bye\n');
    expect(existsSync(join(tmp, 'home', 'hello', 'hello-0', 'agent.yaml'))).toBe(true);
    await rhizome(['destroy', 'hello'], dir);
    deployed = false;
  });
});
