/**
 * The agent's `dashboard` option (`--dashboard [HOST:]PORT`): loopback unless
 * a host is named, the port always named; and the dashboard server refuses
 * a non-loopback address unless the caller says the operator named it.
 * Also: charm options given as flags change only their keys of the file's.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAgentConfig, parseAgentConfig } from '../../src/config';
import { startDashboard } from '../../src/dashboard/server';

const base = { unit: 'web/0', charmDir: '/c', dataDir: '/d' };

describe('agent config: dashboard', () => {
  it('is off by default; a port alone or a number means 127.0.0.1', () => {
    expect(parseAgentConfig(base).dashboard).toBeUndefined();
    expect(parseAgentConfig({ ...base, dashboard: '8080' }).dashboard).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseAgentConfig({ ...base, dashboard: 0 }).dashboard).toEqual({ host: '127.0.0.1', port: 0 });
  });
  it('takes another address only when it is named', () => {
    expect(parseAgentConfig({ ...base, dashboard: '10.0.0.5:8080' }).dashboard).toEqual({ host: '10.0.0.5', port: 8080 });
    expect(parseAgentConfig({ ...base, dashboard: '[::1]:0' }).dashboard).toEqual({ host: '::1', port: 0 });
  });
  it('refuses a host without a port, a port out of range and what is not an address', () => {
    expect(() => parseAgentConfig({ ...base, dashboard: '10.0.0.5' })).toThrow(/names no port.*\[HOST:\]PORT/);
    expect(() => parseAgentConfig({ ...base, dashboard: '70000' })).toThrow(/0\.\.65535/);
    expect(() => parseAgentConfig({ ...base, dashboard: 70000 })).toThrow(/dashboard/);
    expect(() => parseAgentConfig({ ...base, dashboard: 'a b:1' })).toThrow(/HOST\[:PORT\]/);
    expect(() => parseAgentConfig({ ...base, dashboard: true })).toThrow(/dashboard/);
  });
});

describe('dashboard server address', () => {
  it('refuses a non-loopback host unless told the operator named it', async () => {
    await expect(startDashboard({ globals: {}, host: '0.0.0.0' })).rejects.toMatchObject({ code: 'AGENT_ERR_BAD_OPTIONS', message: /loopback only/ });
  });
  it('uses the token it is given and refuses any other', async () => {
    const d = await startDashboard({ globals: {}, host: '127.0.0.1', port: 0, token: 'tok' });
    try {
      expect(d.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=tok$/);
      const api = `${d.url.replace(/\/\?token=.*$/, '')}/api/status`;
      expect((await fetch(api, { headers: { authorization: 'Bearer tok2' } })).status).toBe(401);
    } finally {
      await d.close();
    }
  });
});

describe('agent config: options from flags over the file', () => {
  it('change only the keys they name', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rz-agent-config-'));
    try {
      await writeFile(join(dir, 'agent.yaml'), 'unit: web/0\ncharmDir: c\ndataDir: d\noptions: { port: 8080, greeting: hi }\n');
      expect((await loadAgentConfig(join(dir, 'agent.yaml'))).options).toEqual({ port: 8080, greeting: 'hi' });
      expect((await loadAgentConfig(join(dir, 'agent.yaml'), { options: { port: 9090 } })).options).toEqual({ port: 9090, greeting: 'hi' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
