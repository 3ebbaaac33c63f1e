import { mkdtemp, readFile, readdir, rm, stat, writeFile, chmod, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type AgentError, ExecError } from '../../src/errors';
import { chefItemId, planChefRun, runChef, writeChefDataBags } from '../../src/executors/chef';
import { which } from '../../src/executors/which';

const dirs: string[] = [];
async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rhizome-chef-'));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

const dataBags = {
  db: { 'pg-0': { host: '10.0.0.5', port: 5432, password: 's3cret' } },
  web: { 'web-0': { url: 'http://10.0.0.7' }, 'web-1': { id: 'web-1', url: 'http://10.0.0.8' } },
};

describe('planChefRun', () => {
  it('builds the chef-client local-mode command line and data bag files with ids', () => {
    const plan = planChefRun({ cookbookPath: 'cookbooks', runList: ['nginx', 'app::proxy', 'role[web]'], dataBags, cwd: '/srv/unit' });
    expect(plan.command).toBe('chef-client');
    expect(plan.cwd).toBe('/srv/unit');
    expect(plan.args).toEqual([
      '-z',
      '-o',
      'recipe[nginx],recipe[app::proxy],role[web]',
      '--config-option',
      'chef_repo_path=/srv/unit',
      '--config-option',
      'cookbook_path=/srv/unit/cookbooks',
      '--config-option',
      'data_bag_path=/srv/unit/data_bags',
      '--config-option',
      'node_path=/srv/unit/nodes',
      '--config-option',
      'file_cache_path=/srv/unit/cache',
      '--no-color',
    ]);
    expect(plan.files.map((f) => f.path).sort()).toEqual([
      '/srv/unit/data_bags/db/pg-0.json',
      '/srv/unit/data_bags/web/web-0.json',
      '/srv/unit/data_bags/web/web-1.json',
    ]);
    const pg = plan.files.find((f) => f.path.endsWith('pg-0.json'))!;
    expect(JSON.parse(pg.content)).toEqual({ id: 'pg-0', host: '10.0.0.5', port: 5432, password: 's3cret' });
    const licensed = planChefRun({ cookbookPath: '/cb', runList: ['x'], cwd: '/u', chefClient: 'cinc-client', acceptLicense: true });
    expect(licensed.command).toBe('cinc-client');
    expect(licensed.args.slice(-2)).toEqual(['--chef-license', 'accept-no-persist']);
    expect(licensed.files).toEqual([]);
  });

  it('maps unit names to valid item ids', () => {
    expect(chefItemId('pg/0')).toBe('pg-0');
    const plan = planChefRun({ cookbookPath: '/cb', runList: ['x'], cwd: '/u', dataBags: { db: { [chefItemId('pg/12')]: { a: 1 } } } });
    expect(plan.files[0]?.path).toBe('/u/data_bags/db/pg-12.json');
  });

  it('rejects names that could escape the directory, mismatched ids and bad run lists', () => {
    const base = { cookbookPath: '/cb', runList: ['x'], cwd: '/u' };
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return (e as AgentError).code;
      }
      return undefined;
    };
    expect(code(() => planChefRun({ ...base, dataBags: { '../etc': { a: {} } } }))).toBe('AGENT_ERR_CHEF_BAD_DATA_BAG');
    expect(code(() => planChefRun({ ...base, dataBags: { db: { '..': {} } } }))).toBe('AGENT_ERR_CHEF_BAD_DATA_BAG');
    expect(code(() => planChefRun({ ...base, dataBags: { db: { 'pg/0': {} } } }))).toBe('AGENT_ERR_CHEF_BAD_DATA_BAG');
    expect(code(() => planChefRun({ ...base, dataBags: { db: { a: { id: 'b' } } } }))).toBe('AGENT_ERR_CHEF_BAD_DATA_BAG');
    expect(code(() => planChefRun({ ...base, dataBags: { db: { a: [1] as never } } }))).toBe('AGENT_ERR_CHEF_BAD_DATA_BAG');
    expect(code(() => planChefRun({ ...base, runList: [] }))).toBe('AGENT_ERR_EXEC_BAD_OPTIONS');
    expect(code(() => planChefRun({ ...base, runList: ['a,b'] }))).toBe('AGENT_ERR_EXEC_BAD_OPTIONS');
    expect(code(() => planChefRun({ ...base, runList: ['recipe[a]; rm -rf /'] }))).toBe('AGENT_ERR_EXEC_BAD_OPTIONS');
    expect(code(() => planChefRun({ ...base, cwd: 'relative' }))).toBe('AGENT_ERR_EXEC_BAD_OPTIONS');
  });
});

describe('writeChefDataBags', () => {
  it('writes exactly the planned bags (private files) and removes bags that are gone', async () => {
    const cwd = await freshDir();
    await writeChefDataBags(planChefRun({ cookbookPath: 'cb', runList: ['x'], cwd, dataBags }));
    expect((await readdir(join(cwd, 'data_bags'))).sort()).toEqual(['db', 'web']);
    const item = JSON.parse(await readFile(join(cwd, 'data_bags/web/web-1.json'), 'utf8')) as unknown;
    expect(item).toEqual({ id: 'web-1', url: 'http://10.0.0.8' });
    expect((await stat(join(cwd, 'data_bags/db/pg-0.json'))).mode & 0o777).toBe(0o600);

    await writeChefDataBags(planChefRun({ cookbookPath: 'cb', runList: ['x'], cwd, dataBags: { db: dataBags.db } }));
    expect(await readdir(join(cwd, 'data_bags'))).toEqual(['db']);
  });
});

describe('runChef', () => {
  it('says clearly that chef-client is not installed, before writing anything', async () => {
    const cwd = await freshDir();
    const missing = (await which('chef-client')) === undefined;
    const err = await runChef({
      cookbookPath: 'cb',
      runList: ['x'],
      cwd,
      dataBags,
      ...(missing ? {} : { env: { PATH: '/nonexistent' } }),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecError);
    expect((err as ExecError).code).toBe('AGENT_ERR_CHEF_MISSING');
    expect((err as ExecError).message).toMatch(/'chef-client' is not installed.*Debian does not package/);
    expect(await readdir(cwd)).toEqual([]);
  });

  // A stand-in chef-client (a real executable) checks what the real one would get.
  async function fakeChef(dir: string, body: string): Promise<string> {
    const bin = join(dir, 'bin');
    await mkdir(bin);
    const path = join(bin, 'chef-client');
    await writeFile(path, `#!/bin/sh\n${body}\n`);
    await chmod(path, 0o755);
    return bin;
  }

  it('runs chef-client in the unit directory with the data bags in place', async () => {
    const cwd = await freshDir();
    const bin = await fakeChef(cwd, 'echo "args: $*"; echo "pwd: $(pwd)"; cat data_bags/db/pg-0.json');
    const result = await runChef({
      cookbookPath: 'cb',
      runList: ['nginx'],
      cwd,
      dataBags,
      env: { PATH: `${bin}:/usr/bin:/bin` },
    });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`args: ${result.plan.args.join(' ')}`);
    expect(result.stdout).toContain(`pwd: ${cwd}`);
    expect(result.stdout).toContain('"id": "pg-0"');
  });

  it("turns a failed chef-client run into a typed error with Chef's FATAL line", async () => {
    const cwd = await freshDir();
    const bin = await fakeChef(
      cwd,
      'echo "Starting Chef Infra Client"; echo "[2026-01-01T00:00:00+00:00] FATAL: Chef::Exceptions::CookbookNotFound: cookbook nginx not found"; exit 1',
    );
    const err = await runChef({ cookbookPath: 'cb', runList: ['nginx'], cwd, env: { PATH: `${bin}:/usr/bin:/bin` } }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ExecError);
    expect((err as ExecError).code).toBe('AGENT_ERR_CHEF_FAILED');
    expect((err as ExecError).exitCode).toBe(1);
    expect((err as ExecError).message).toContain('cookbook nginx not found');
  });
});
