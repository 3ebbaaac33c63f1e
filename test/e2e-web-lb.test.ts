/**
 * examples/web-lb/bundle.yaml end to end, with real agent processes, real
 * ansible-playbook and a real nginx on 127.0.0.1: requests through nginx
 * reach every live web unit; after a web unit is SIGKILLed and the cluster
 * re-converges, nginx no longer sends to it; a new web unit is picked up;
 * the killed unit, restarted from its data dir, serves on its old port and
 * is back in the upstream; an nginx that dies is started again by the lb
 * (it watches the pid file); an lb agent SIGKILLed leaves its nginx
 * serving (a daemon in its own session), and `rhizome destroy` stops that
 * nginx all the same (the charm declares it as a workload): the master is
 * gone and the port is free.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { addUnit, deploy, destroy, killUnit, startUnit } from '@rhizome/agent';
import { runCli } from '@rhizome/agent/cli';
import { converge, ROOT, unitDir, unitStatus, writeBundle, stopLeftoverNginx } from './e2e-support';
import { freePort, until } from '@rhizome/test-support';

const NAME = 'web-lb';
let home = '';
let port = 0;
let bundle = '';

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'rhizome-e2e-weblb-'));
  port = await freePort();
  // The example bundle, with a free port for nginx so parallel runs do not collide.
  const example = await readFile(join(ROOT, 'examples/web-lb/bundle.yaml'), 'utf8');
  expect(example).toContain('port: 18480');
  bundle = await writeBundle(home, example.replace('port: 18480', `port: ${port}`).replace(/charm: \.\.\/\.\.\/charms\//g, 'charm: charms/'));
});
afterAll(async () => {
  await destroy(home, { deployment: NAME, keep: true }).catch(() => undefined);
  await stopLeftoverNginx(home, NAME);
  await rm(home, { recursive: true, force: true });
}, 60_000);

/** The units that answered `n` requests through nginx. */
async function reached(n: number): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } });
    const body = (await res.text()).trim();
    seen.add(res.status === 200 ? body : `HTTP ${res.status}`);
  }
  return [...seen].sort();
}
/** Whether a process runs (a zombie does not: /proc says Z until its parent reaps it). */
async function runs(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && !/^\d+ \(.*\) [ZX] /.test(stat);
}

/** `rhizome ARGS` in this process; what it printed on stdout. */
async function rhizome(...args: string[]): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  try {
    return { code: await runCli(['--home', home, ...args]), stdout };
  } finally {
    out.mockRestore();
  }
}

async function portIsFree(p: number): Promise<boolean> {
  const s = createServer();
  const free = await new Promise<boolean>((resolve) => {
    s.once('error', () => resolve(false));
    s.listen(p, '127.0.0.1', () => resolve(true));
  });
  if (free) await new Promise<void>((r) => s.close(() => r()));
  return free;
}

const reachesExactly = (want: string[]) =>
  until(`nginx to reach exactly ${want.join(', ')}`, async () => ((await reached(4 * want.length)).join(',') === want.join(',') ? true : undefined), { timeoutMs: 90_000, intervalMs: 500 });

describe('the web-lb bundle on real agents', () => {
  it('balances over the live web units through every change', { timeout: 420_000 }, async () => {
    await deploy(bundle, { home, timeoutMs: 240_000, noFsync: true });
    await reachesExactly(['web/0', 'web/1', 'web/2']);
    const lbDir = unitDir(home, NAME, 'lb/0');
    const status = await unitStatus(home, NAME, 'lb/0');
    expect(status.workload).toEqual({ state: 'active', message: `nginx on http://127.0.0.1:${port}/ → web/0, web/1, web/2` });
    const pid = Number((await readFile(join(lbDir, 'nginx.pid'), 'utf8')).trim());
    expect(() => process.kill(pid, 0)).not.toThrow();

    const web1Serving = (await unitStatus(home, NAME, 'web/1')).workload?.message;
    expect(web1Serving).toMatch(/^serving http:\/\/127\.0\.0\.1:\d+\/$/);
    await killUnit(home, 'web/1', { deployment: NAME });
    await converge(home, NAME, 180_000);
    await reachesExactly(['web/0', 'web/2']);
    expect((await readFile(join(lbDir, 'nginx.conf'), 'utf8')).match(/^\s*server 127\.0\.0\.1:\d+ /gm)).toHaveLength(2);
    // Only reloaded: the same master serves.
    expect(Number((await readFile(join(lbDir, 'nginx.pid'), 'utf8')).trim())).toBe(pid);

    await addUnit(home, 'web', { deployment: NAME, noFsync: true });
    await converge(home, NAME, 180_000);
    await reachesExactly(['web/0', 'web/2', 'web/3']);

    // The killed unit comes back from its data dir: same port (a persisted fact), back in the upstream.
    const before = (await readFile(join(lbDir, 'nginx.conf'), 'utf8')).match(/server 127\.0\.0\.1:(\d+) .*# web\/1/);
    expect(before).toBeNull();
    await startUnit(home, 'web/1', { deployment: NAME, noFsync: true });
    await converge(home, NAME, 180_000);
    await reachesExactly(['web/0', 'web/1', 'web/2', 'web/3']);
    expect((await unitStatus(home, NAME, 'web/1')).workload?.message).toBe(web1Serving);

    // nginx dies behind the agent's back: the lb watches its pid file and starts it again.
    process.kill(pid, 'SIGTERM');
    const restarted = await until('nginx restarted by the lb', async () => {
      const p = Number((await readFile(join(lbDir, 'nginx.pid'), 'utf8').catch(() => '')).trim());
      return p > 0 && p !== pid ? p : undefined;
    }, 90_000);
    await reachesExactly(['web/0', 'web/1', 'web/2', 'web/3']);

    // The lb agent is SIGKILLed: nginx, a daemon in its own session, keeps serving.
    await killUnit(home, 'lb/0', { deployment: NAME });
    expect(await runs(restarted)).toBe(true);
    expect((await reached(4)).length).toBeGreaterThan(0);
    expect(JSON.parse(await readFile(join(lbDir, '..', 'workloads.json'), 'utf8'))).toEqual({
      unit: 'lb/0',
      workloads: [{ name: 'nginx', pidFile: join(lbDir, 'nginx.pid'), cmdline: ['nginx: master process', `-p ${lbDir} `] }],
    });

    // destroy stops it anyway (the lb declares it as a workload) and says so.
    const destroyed = await rhizome('destroy', NAME, '--keep');
    expect(destroyed.code).toBe(0);
    expect(destroyed.stdout).toBe(`lb/0: stopped nginx (pid ${restarted}) with SIGTERM\ndestroyed ${NAME}\n`);
    expect(await runs(restarted)).toBe(false);
    expect(await portIsFree(port)).toBe(true);
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });
});
