import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testUnit } from '@rhizome-charms/kit';
import type { Json, KnowledgeBase } from '@rhizome/engine';
import { runScenario } from '@rhizome/engine/testing';
import charm from '../charm';

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rhizome-saga-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const handlers = (options: Record<string, Json> = {}) => charm.handlers(testUnit({ unit: 'sites/0', dir, ...(charm.config ? { defaults: charm.config } : {}), options }));
const provision = (payload: Json) => ({ kind: 'internal' as const, name: 'user.provision', payload });
const exists = (p: string) => stat(p).then(() => true, () => false);
const registry = async () => JSON.parse(await readFile(join(dir, 'registry.json'), 'utf8')) as { sites: Record<string, unknown> };

describe('saga-demo', () => {
  it('provisions a site in three external steps and records it', async () => {
    const out = await runScenario({ handlers: handlers(), event: provision({ site: 'blog', content: '<h1>Blog</h1>' }) });
    expect(out.committed).toBe(true);
    expect(out.report.steps.map((s) => s.handler)).toEqual(['create-site-dir', 'write-index', 'register-site', 'activate-site']);
    expect(await readFile(join(dir, 'sites/blog/index.html'), 'utf8')).toBe('<h1>Blog</h1>');
    expect(await registry()).toEqual({ sites: { blog: { unit: 'sites/0', path: join(dir, 'sites/blog') } } });
    expect(out.facts['sites.blog']).toEqual({ path: join(dir, 'sites/blog') });
    expect(out.facts['workload.status']).toEqual({ state: 'active', message: '1 site: blog' });
  });

  it('undoes every earlier step, in reverse order, when the last step fails', async () => {
    const out = await runScenario({ handlers: handlers(), event: provision({ site: 'shop', failAt: 'activate' }) });
    expect(out.committed).toBe(false);
    expect(out.report.error).toMatchObject({ handler: 'activate-site', message: expect.stringContaining('failAt') });
    expect(out.report.compensated.map((c) => [c.handler, c.outcome])).toEqual([
      ['register-site', 'ok'],
      ['write-index', 'ok'],
      ['create-site-dir', 'ok'],
    ]);
    expect(await exists(join(dir, 'sites/shop'))).toBe(false);
    expect(await registry()).toEqual({ sites: {} });
    expect(out.facts['sites.shop']).toBeUndefined();
  });

  it('undoes the directory and the file when the registry refuses the site', async () => {
    const h = handlers({ 'max-sites': 1 });
    const first = await runScenario({ handlers: h, event: provision({ site: 'a' }) });
    expect(first.committed).toBe(true);
    const out = await runScenario({ handlers: h, kb: first.kb, event: provision({ site: 'b' }) });
    expect(out.committed).toBe(false);
    expect(out.report.error).toMatchObject({ handler: 'register-site', message: expect.stringMatching(/full \(1 of max-sites 1\).*raise the max-sites option/) });
    expect(out.report.compensated.map((c) => c.handler)).toEqual(['write-index', 'create-site-dir']);
    expect(await readdir(join(dir, 'sites'))).toEqual(['a']);
    expect(Object.keys((await registry()).sites)).toEqual(['a']);
    expect(out.facts['sites.a']).toBeDefined(); // the earlier, committed run is untouched
  });

  it('restores what was there before, and keeps what it did not create, when re-provisioning fails', async () => {
    const h = handlers();
    const first = await runScenario({ handlers: h, event: provision({ site: 'blog', content: 'v1' }) });
    const out = await runScenario({ handlers: h, kb: first.kb as KnowledgeBase, event: provision({ site: 'blog', content: 'v2', failAt: 'activate' }) });
    expect(out.committed).toBe(false);
    expect(await readFile(join(dir, 'sites/blog/index.html'), 'utf8')).toBe('v1');
    expect(Object.keys((await registry()).sites)).toEqual(['blog']);
    expect(out.report.compensated.find((c) => c.handler === 'write-index')?.notes).toEqual([`restored ${join(dir, 'sites/blog/index.html')}`]);
  });

  it('rejects a malformed request before touching anything', async () => {
    const out = await runScenario({ handlers: handlers(), event: provision({ site: '../etc' }) });
    expect(out.committed).toBe(false);
    expect(out.report.error?.message).toMatch(/"site" must be lowercase/);
    expect(await readdir(dir)).toEqual([]);
  });
});
