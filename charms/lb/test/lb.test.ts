/**
 * The lb charm, two ways:
 *   - its decisions, with the playbook runner replaced by a recorder (no
 *     ansible, no network): what it asks the playbook to render, and when;
 *   - the real thing: ansible-playbook renders nginx.conf and starts the
 *     unit's own nginx, in front of real web charm servers, and HTTP
 *     requests through it reach exactly the live web units.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { testUnit, http } from '@rhizome-charms/kit';
import type { AnsiblePlaybookOptions, AnsibleResult } from '@rhizome/agent';
import { internalEvent } from '@rhizome/engine';

import { runRelationScenario, type EndpointFixture, type ScenarioRelationEvent } from '@rhizome/relations/testing';
import web from '@rhizome-charms/web';
import lb from '../charm';
import { lbHandlers } from '../src/handlers';
import { nginxPid, stopNginx } from '../src/nginx';
import { freePort, until } from '@rhizome/test-support';

const side = { side: http.requirer } satisfies EndpointFixture;
const webData = (port: number) => ({ host: '127.0.0.1', port });

describe('lb decisions (playbook recorded, not run)', () => {
  let dir = '';
  const calls: AnsiblePlaybookOptions[] = [];
  let fail: string | undefined;
  const runPlaybook = async (opts: AnsiblePlaybookOptions): Promise<AnsibleResult> => {
    calls.push(opts);
    if (fail) throw new Error(fail);
    const backends = opts.extraVars?.['backends'] as { host: string; port: number }[];
    return {
      facts: { upstream: backends.map((b) => `${b.host}:${b.port}`), nginx_pid: '4242', action: 'reloaded' },
      changed: true,
      failedTasks: [],
      stdout: '',
      stats: {},
      durationMs: 1,
    };
  };
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rhizome-lb-'));
    calls.length = 0;
    fail = undefined;
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const handlers = () => lbHandlers(testUnit({ unit: 'lb/0', dir, options: { port: 18123 } }), { runPlaybook });

  it('renders a 503 config at start without web units, then follows joins and departures', async () => {
    const h = handlers();
    let out = await runRelationScenario({ handlers: h, unit: 'lb/0', endpoints: { backends: { ...side, relations: { 'rel-1': { remoteService: 'web' } } } } });
    expect(out.committed).toBe(true);
    expect(calls.map((c) => c.extraVars?.['backends'])).toEqual([[]]);
    expect(calls[0]!.extraVars).toMatchObject({ unit_name: 'lb/0', unit_dir: dir, listen_host: '127.0.0.1', listen_port: 18123 });
    expect(calls[0]!.playbook).toMatch(/charms\/lb\/playbook\/site\.yml$/);
    expect(out.facts['workload.status']).toEqual({ state: 'waiting', message: 'nginx on http://127.0.0.1:18123/: waiting for web units' });

    const events: ScenarioRelationEvent[] = [
      { endpoint: 'backends', name: 'changed', unit: 'web/10', data: webData(9010) },
      { endpoint: 'backends', name: 'changed', unit: 'web/2', data: webData(9002) },
      // Same data again: nothing to render.
      { endpoint: 'backends', name: 'changed', unit: 'web/2', data: webData(9002) },
      { endpoint: 'backends', name: 'departed', unit: 'web/10' },
    ];
    for (const event of events) {
      out = await runRelationScenario({ handlers: h, unit: 'lb/0', kb: out.kb, endpoints: { backends: side }, event });
      expect(out.committed).toBe(true);
    }
    expect(calls.map((c) => (c.extraVars?.['backends'] as { unit: string }[]).map((b) => b.unit))).toEqual([[], ['web/10'], ['web/2', 'web/10'], ['web/2']]);
    expect(out.facts['lb.upstream']).toEqual(['127.0.0.1:9002']);
    expect(out.facts['lb.nginx-pid']).toBe(4242);
    expect(out.facts['workload.status']).toEqual({ state: 'active', message: 'nginx on http://127.0.0.1:18123/ → web/2' });
  });

  it('rolls the run back when the playbook fails, so the change is retried later', async () => {
    const h = handlers();
    const started = await runRelationScenario({ handlers: h, unit: 'lb/0', endpoints: { backends: { ...side, relations: { 'rel-1': { remoteService: 'web' } } } } });
    fail = 'nginx: [emerg] invalid port in upstream';
    const out = await runRelationScenario({ handlers: h, unit: 'lb/0', kb: started.kb, endpoints: { backends: side }, event: { endpoint: 'backends', name: 'changed', unit: 'web/0', data: webData(9000) } });
    expect(out.committed).toBe(false);
    expect(out.report.error).toMatchObject({ handler: 'configure-nginx', message: expect.stringContaining('invalid port in upstream') });
    // Nothing of the run survives: the backends fact is as before, so the retry recomputes it.
    expect(out.facts['lb.backends']).toEqual([]);
  });

  it('moves nginx when the port option changes, and only then', async () => {
    const started = await runRelationScenario({ handlers: handlers(), unit: 'lb/0', endpoints: { backends: { ...side, relations: { 'rel-1': { remoteService: 'web' } } } } });
    const changed = (port: number) => lbHandlers(testUnit({ unit: 'lb/0', dir, options: { port } }), { runPlaybook });
    // The same options again (another option changed): nothing to do.
    let out = await runRelationScenario({ handlers: changed(18123), unit: 'lb/0', kb: started.kb, endpoints: { backends: side }, event: internalEvent('config.changed', {}) });
    expect(out.committed).toBe(true);
    expect(calls).toHaveLength(1);
    out = await runRelationScenario({ handlers: changed(18124), unit: 'lb/0', kb: out.kb, endpoints: { backends: side }, event: internalEvent('config.changed', {}) });
    expect(out.committed).toBe(true);
    expect(calls.map((c) => c.extraVars?.['listen_port'])).toEqual([18123, 18124]);
    expect(out.facts['workload.status']).toEqual({ state: 'waiting', message: 'nginx on http://127.0.0.1:18124/: waiting for web units' });
  });

  it('says how to install nginx when it is missing, before running the playbook', async () => {
    const h = lbHandlers(testUnit({ unit: 'lb/0', dir, options: { port: 18123, 'nginx-bin': 'nginx-not-installed-here' } }), { runPlaybook });
    const out = await runRelationScenario({ handlers: h, unit: 'lb/0' });
    expect(out.committed).toBe(false);
    expect(out.report.error).toMatchObject({ handler: 'start-nginx', message: expect.stringContaining("scripts/ensure-apt.sh nginx") });
    expect(calls).toEqual([]);
  });

  it('refuses a privileged port', () => {
    expect(() => lbHandlers(testUnit({ unit: 'lb/0', dir, options: { port: 80 } }))).toThrow(/unprivileged port/);
  });
});

/** Which units answer through nginx, over `n` requests. */
async function reached(port: number, n: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } });
    const body = (await res.text()).trim();
    seen.add(res.status === 200 ? body : `HTTP ${res.status}`);
  }
  return seen;
}

describe('lb for real: ansible-playbook renders nginx.conf and drives nginx in front of web units', () => {
  let root = '';
  let lbDir = '';
  let lbPort = 0;
  const webUnits: ReturnType<typeof testUnit>[] = [];
  const ports: Record<string, number> = {};

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'rhizome-lb-real-'));
    lbDir = await mkdtemp(join(root, 'lb-'));
    lbPort = await freePort();
    for (const n of [0, 1, 2, 3]) {
      const u = testUnit({ unit: `web/${n}`, dir: await mkdtemp(join(root, `web${n}-`)) });
      webUnits.push(u);
      const out = await runRelationScenario({ handlers: web.handlers(u), unit: u.unit });
      ports[u.unit] = out.facts['web.port'] as number;
    }
  });
  afterAll(async () => {
    await stopNginx(lbDir);
    for (const u of webUnits) await web.stop?.(u);
    await rm(root, { recursive: true, force: true });
  });

  it('reaches every live web unit, stops sending to a departed one, and picks up a new one', { timeout: 180_000 }, async () => {
    const unit = testUnit({ unit: 'lb/0', dir: lbDir, ...(lb.config ? { defaults: lb.config } : {}), options: { port: lbPort } });
    const h = lb.handlers(unit);
    const three = Object.fromEntries(['web/0', 'web/1', 'web/2'].map((u) => [u, webData(ports[u]!)]));
    // The agent starts with three web units already related.
    let out = await runRelationScenario({ handlers: h, unit: 'lb/0', endpoints: { backends: { ...side, relations: { 'rel-1': { remoteService: 'web', units: three } } } } });
    expect(out.error?.message).toBeUndefined();
    expect(out.facts['lb.upstream']).toEqual(['web/0', 'web/1', 'web/2'].map((u) => `127.0.0.1:${ports[u]}`));
    const conf = await readFile(join(lbDir, 'nginx.conf'), 'utf8');
    for (const u of ['web/0', 'web/1', 'web/2']) expect(conf).toContain(`server 127.0.0.1:${ports[u]} `);
    expect(conf).toContain(`listen 127.0.0.1:${lbPort};`);
    const pid = await nginxPid(lbDir);
    expect(pid).toBe(out.facts['lb.nginx-pid']);
    // The charm's workload declaration names this master: `rhizome destroy` finds it by it after a SIGKILLed agent.
    const [declared, ...others] = lb.workloads!(unit);
    expect(others).toEqual([]);
    expect(declared!.pidFile).toBe(join(lbDir, 'nginx.pid'));
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0/g, ' ');
    for (const s of declared!.cmdline) expect(cmdline).toContain(s);
    expect(await reached(lbPort, 12)).toEqual(new Set(['web/0\n', 'web/1\n', 'web/2\n'].map((s) => s.trim())));

    // web/1 dies: the mesh reports it departed; the lb re-renders and reloads.
    await web.stop!(webUnits[1]!);
    out = await runRelationScenario({ handlers: h, unit: 'lb/0', kb: out.kb, endpoints: { backends: side }, event: { endpoint: 'backends', name: 'departed', unit: 'web/1' } });
    expect(out.error?.message).toBeUndefined();
    expect(out.facts['lb.upstream']).toEqual(['web/0', 'web/2'].map((u) => `127.0.0.1:${ports[u]}`));
    expect(await readFile(join(lbDir, 'nginx.conf'), 'utf8')).not.toContain(`:${ports['web/1']} `);
    expect(await nginxPid(lbDir)).toBe(pid); // reloaded, not restarted
    // A reload lets old workers finish; poll (bounded) until only live units answer.
    const answering = async (n: number, tries: number): Promise<Set<string>> =>
      until(`exactly ${n} units answering through nginx`, async () => {
        const seen = await reached(lbPort, tries);
        return seen.size === n ? seen : undefined;
      });
    expect(await answering(2, 12)).toEqual(new Set(['web/0', 'web/2']));

    // web/3 joins.
    out = await runRelationScenario({ handlers: h, unit: 'lb/0', kb: out.kb, endpoints: { backends: side }, event: { endpoint: 'backends', name: 'changed', unit: 'web/3', data: webData(ports['web/3']!) } });
    expect(out.error?.message).toBeUndefined();
    expect(await answering(3, 15)).toEqual(new Set(['web/0', 'web/2', 'web/3']));

    // nginx dies behind the agent's back: its pid file goes away, the watch raises file.changed, nginx is started again.
    expect(lb.watch!(unit)).toEqual([join(lbDir, 'nginx.pid')]);
    const before = (await nginxPid(lbDir))!;
    process.kill(before, 'SIGTERM');
    await until('nginx gone and its pid file removed', async () => (await nginxPid(lbDir)) === undefined);
    out = await runRelationScenario({ handlers: h, unit: 'lb/0', kb: out.kb, endpoints: { backends: side }, event: { kind: 'internal', name: 'file.changed', payload: { path: join(lbDir, 'nginx.pid') } } });
    expect(out.error?.message).toBeUndefined();
    expect(out.report.steps.map((s) => s.handler)).toEqual(['restart-nginx']);
    const restarted = await nginxPid(lbDir);
    expect(restarted).toBeDefined();
    expect(restarted).not.toBe(before);
    expect(await reached(lbPort, 15)).toEqual(new Set(['web/0', 'web/2', 'web/3']));
    // A file.changed for a pid file that is there (a start wrote it) changes nothing.
    const again = await runRelationScenario({ handlers: h, unit: 'lb/0', kb: out.kb, endpoints: { backends: side }, event: { kind: 'internal', name: 'file.changed', payload: { path: join(lbDir, 'nginx.pid') } } });
    expect(again.report.steps.map((s) => s.notes)).toEqual([[]]);
    expect(await nginxPid(lbDir)).toBe(restarted);

    // stop asks nginx to quit.
    await lb.stop!(unit);
    expect(await nginxPid(lbDir)).toBeUndefined();
    await expect(fetch(`http://127.0.0.1:${lbPort}/`)).rejects.toThrow();
  });
});
