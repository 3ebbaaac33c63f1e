import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testUnit, http } from '@rhizome-charms/kit';

import { runRelationScenario, type EndpointFixture } from '@rhizome/relations/testing';
import { freePort } from '@rhizome/test-support';
import charm from '../charm';

const side = { side: http.provider } satisfies EndpointFixture;
let dir = '';
let units: ReturnType<typeof testUnit>[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rhizome-web-'));
});
afterEach(async () => {
  for (const u of units) await charm.stop?.(u);
  units = [];
  await rm(dir, { recursive: true, force: true });
});

function unit(options: Record<string, number> = {}) {
  const u = testUnit({ unit: 'web/2', dir, ...(charm.config ? { defaults: charm.config } : {}), options });
  units.push(u);
  return u;
}

async function get(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/anything`);
  expect(res.status).toBe(200);
  return res.text();
}

describe('web', () => {
  it('starts a real HTTP server that answers with its unit name', async () => {
    const out = await runRelationScenario({ handlers: charm.handlers(unit()), unit: 'web/2' });
    expect(out.committed).toBe(true);
    const port = out.facts['web.port'] as number;
    expect(port).toBeGreaterThan(0);
    expect(await get(port)).toBe('web/2\n');
    expect(out.facts['workload.status']).toEqual({ state: 'active', message: `serving http://127.0.0.1:${port}/` });
  });

  it('publishes host and port when a load balancer joins', async () => {
    const h = charm.handlers(unit());
    const started = await runRelationScenario({ handlers: h, unit: 'web/2', endpoints: { website: { ...side, relations: { 'rel-1': { remoteService: 'lb' } } } } });
    const out = await runRelationScenario({ handlers: h, unit: 'web/2', kb: started.kb, endpoints: { website: side }, event: { endpoint: 'website', name: 'joined', unit: 'lb/0' } });
    expect(out.published('website')).toEqual({ host: '127.0.0.1', port: started.facts['web.port'] });
  });

  it('reuses its port after a restart, and stop closes the server', async () => {
    const u = unit();
    const first = await runRelationScenario({ handlers: charm.handlers(u), unit: 'web/2' });
    const port = first.facts['web.port'] as number;
    await charm.stop!(u);
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
    // The agent restarts: a new handler set, the persisted facts.
    const again = await runRelationScenario({ handlers: charm.handlers(unit()), unit: 'web/2', kb: first.kb });
    expect(again.facts['web.port']).toBe(port);
    expect(await get(port)).toBe('web/2\n');
  });

  it('listens on the configured port, and a taken port fails the run with a clear error', async () => {
    const port = await freePort();
    const out = await runRelationScenario({ handlers: charm.handlers(unit({ port })), unit: 'web/2' });
    expect(out.facts['web.port']).toBe(port);
    // A second unit (another directory) asking for the same port.
    const otherDir = await mkdtemp(join(tmpdir(), 'rhizome-web-'));
    try {
      const other = testUnit({ unit: 'web/3', dir: otherDir, options: { port } });
      const clash = await runRelationScenario({ handlers: charm.handlers(other), unit: 'web/3' });
      expect(clash.committed).toBe(false);
      expect(clash.report.error?.message).toMatch(/EADDRINUSE.*set the `port` option to 0/);
      expect(clash.facts['web.port']).toBeUndefined();
    } finally {
      await rm(otherDir, { recursive: true, force: true });
    }
  });

  it('refuses a bad port option', () => {
    expect(() => charm.handlers(unit({ port: -1 }))).toThrow(/"port" must be 0/);
  });
});
