/**
 * `rhizome dashboard` end to end in a real headless Chromium (Debian's
 * chromium, driven by playwright-core): against a real deployment (four
 * agent processes) the page shows every unit, shows a unit that is killed
 * go down, shows a unit in error with its handler and message and resolves
 * it from the page (the unit's engine leaves `error`), and refuses API
 * calls without its session token. A screenshot is saved to
 * test/artifacts/dashboard.png (gitignored) for a person to look at.
 * Then an agent serving the page itself (`rhizome agent --dashboard`,
 * on the killed unit's data directory): its page, opened from
 * `dashboard.url`, shows the whole mesh and takes only the control token.
 */
import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { deploy, destroy, killUnit, readDeployment } from '@rhizome/agent';
import { agentCommand, runCli } from '@rhizome/agent/cli';
import { readToken } from '@rhizome/agent/testing';
import { startDashboard, type Dashboard } from '../packages/agent/src/dashboard/server';
import { ROOT, unitStatus } from './e2e-support';
import { until } from '@rhizome/test-support';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = await access(CHROMIUM).then(
  () => true,
  () => false,
);
if (!haveChromium) console.warn('skipping the dashboard test: no /usr/bin/chromium (scripts/ensure-apt.sh chromium)');
const NAME = 'cluster';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'];
let home = '';
let dashboard: Dashboard | undefined;
let deployed = false;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'rhizome-dash-'));
});
afterAll(async () => {
  await dashboard?.close();
  await destroy(home, { deployment: NAME }).catch(() => undefined);
  await rm(home, { recursive: true, force: true });
}, 60_000);

describe.skipIf(!haveChromium)('the dashboard in headless Chromium', () => {
  it('shows every unit, a killed unit going down, and resolves an errored unit from the page', { timeout: 240_000 }, async () => {
    await deploy(join(ROOT, 'packages/agent/test/fixtures/bundles/cluster.yaml'), { home, timeoutMs: 120_000, noFsync: true });
    deployed = true;
    dashboard = await startDashboard({ globals: { home, deployment: NAME } });
    // The API refuses a caller without the page's token.
    const base = dashboard.url.replace(/\/\?token=.*$/, '');
    expect((await fetch(`${base}/api/status`)).status).toBe(401);
    expect((await fetch(`${base}/api/status`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);

    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      await page.goto(dashboard.url);
      const units = ['faulty/0', 'receiver/0', 'receiver/1', 'sender/0'];
      await until('every unit on the page', async () => ((await page.locator('tr.unit').count()) === units.length ? true : undefined), 30_000);
      expect(await page.$$eval('tr.unit', (rows) => rows.map((r) => r.getAttribute('data-unit')).sort())).toEqual(units);
      expect(await page.$$eval('#relation-graph .service', (g) => g.map((x) => x.getAttribute('data-service')).sort())).toEqual(['faulty', 'receiver', 'sender']);

      // A handler that throws past its retries: the page shows the error and resolves it.
      const spy = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
      try {
        expect(await runCli(['--home', home, 'event', 'explode'])).toBe(0);
      } finally {
        spy.mockRestore();
      }
      const errorBox = page.locator('.errorbox[data-unit="faulty/0"]');
      await errorBox.waitFor({ timeout: 60_000 });
      expect(await errorBox.textContent()).toMatch(/handler explode on user\.explode.*boom/);
      // The box shows from the first failed attempt (state retrying); the workload reads error once retries run out.
      await page.waitForSelector('tr.unit[data-unit="faulty/0"][data-workload="error"]', { timeout: 60_000 });
      await page.click('button.skip[data-unit="faulty/0"]');
      await errorBox.waitFor({ state: 'detached', timeout: 30_000 });
      expect((await unitStatus(home, NAME, 'faulty/0')).engine.state).toBe('idle');

      // Selecting a unit shows its runs, with the handlers that ran and why.
      await page.click('tr.unit[data-unit="sender/0"]');
      await page.waitForSelector('#unit-detail tr.run', { timeout: 30_000 });
      expect(await page.textContent('#unit-detail')).toMatch(/start/);

      // A unit killed with SIGKILL goes down on the page.
      await killUnit(home, 'receiver/1', { deployment: NAME });
      await page.waitForSelector('tr.unit[data-unit="receiver/1"][data-agent="down"]', { timeout: 30_000 });

      await mkdir(join(ROOT, 'test', 'artifacts'), { recursive: true });
      await page.screenshot({ path: join(ROOT, 'test', 'artifacts', 'dashboard.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });

  it('is served by an agent itself with --dashboard, behind the control token', { timeout: 120_000 }, async () => {
    if (!deployed) return expect.fail('needs the deployment of the test above');
    // receiver/1 was killed above: an agent started by hand on its data directory rejoins the mesh and serves the page.
    let unit = (await readDeployment(home, NAME)).units['receiver/1']!;
    if (unit.state === 'running') unit = await killUnit(home, 'receiver/1', { deployment: NAME });
    const cmd = agentCommand(join(unit.dataDir, 'agent.yaml'), ['--dashboard', '127.0.0.1:0']);
    const child = spawn(cmd.command, cmd.args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const urlFile = join(unit.dataDir, 'dashboard.url');
    try {
      const running = await until('the agent to say it runs', async () => (/running: .*dashboard (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stdout) ?? undefined), { timeoutMs: 30_000, intervalMs: 100 });
      // The address is printed and logged without the token; the file holds the whole URL.
      expect(stdout).not.toContain(await readToken(unit.dataDir));
      const url = (await readFile(urlFile, 'utf8')).trim();
      expect(url).toBe(`${running[1]}?token=${await readToken(unit.dataDir)}`);
      expect((await stat(urlFile)).mode & 0o777).toBe(0o600);
      const base = running[1]!.replace(/\/$/, '');
      expect((await fetch(`${base}/api/status`)).status).toBe(401);
      expect((await fetch(`${base}/api/status`, { headers: { authorization: 'Bearer not-the-control-token' } })).status).toBe(401);

      const { chromium } = await import('playwright-core');
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      try {
        const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
        await page.goto(url);
        // The agent's own control API sees the whole mesh: every unit, itself up again.
        await page.waitForSelector('tr.unit[data-unit="receiver/1"][data-agent="idle"]', { timeout: 30_000 });
        expect(await page.$$eval('tr.unit', (rows) => rows.map((r) => r.getAttribute('data-unit')).sort())).toEqual(['faulty/0', 'receiver/0', 'receiver/1', 'sender/0']);
      } finally {
        await browser.close();
      }
    } finally {
      child.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 20_000).unref())]);
      if (code === 'hung') child.kill('SIGKILL');
      expect(code).toBe(0);
    }
    // A graceful stop takes the URL file with it.
    await expect(access(urlFile)).rejects.toThrow();
  });
});
