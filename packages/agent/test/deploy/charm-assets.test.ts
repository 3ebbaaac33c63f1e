/**
 * What goes to a machine with a charm (release.ts, charm-assets.ts): its
 * compiled module and the files of its folder that are not code, under one
 * hash; import.meta.url in the charm's own files pointing into that layout.
 * The real thing over SSH is test/operator-trial-2.test.ts.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { charmAssets, MAX_CHARM_ASSET_FILES } from '../../src/deploy/charm-assets';
import { agentArtifact, charmArtifacts } from '../../src/deploy/release';

const LB = resolve(fileURLToPath(new URL('../../../../charms/lb', import.meta.url)));
const tmp: string[] = [];
afterAll(async () => {
  for (const d of tmp) await rm(d, { recursive: true, force: true });
});

describe('a charm for a machine', () => {
  it('carries the lb playbook and its template beside charm.mjs, under one hash', async () => {
    const [module, ...assets] = await charmArtifacts(LB);
    expect(module.name).toBe('charm.mjs');
    expect(assets.map((a) => a.name)).toEqual(expect.arrayContaining(['playbook/site.yml', 'playbook/templates/nginx.conf.j2']));
    expect(assets.some((a) => /\.ts$/.test(a.name) || a.name.startsWith('node_modules/') || a.name.startsWith('dist/'))).toBe(false);
    expect(new Set([module, ...assets].map((a) => a.hash)).size).toBe(1);
    // The playbook is found relative to where src/nginx.ts sits in that layout, never at this checkout's path.
    const code = module.bytes.toString('utf8');
    expect(code).toContain('new URL("src/nginx.ts",import.meta.url)');
    expect(code).not.toContain(LB);
  });

  it('leaves the compiler and the bundler out of the agent a machine runs (they doubled its memory)', async () => {
    const agent = await agentArtifact();
    expect(agent.bytes.length).toBeLessThan(4 * 1024 * 1024);
    expect(agent.bytes.toString('utf8')).toMatch(/import\("typescript"\)|from"typescript"/);
  });

  it('keeps the executable bit, and refuses a folder full of data', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rz-assets-'));
    tmp.push(dir);
    await writeFile(join(dir, 'charm.ts'), 'export default {};\n');
    await writeFile(join(dir, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    await mkdir(join(dir, '.git'));
    await writeFile(join(dir, '.git', 'HEAD'), 'x');
    expect((await charmAssets(dir)).map((a) => [a.name, a.mode])).toEqual([['run.sh', 0o755]]);
    await mkdir(join(dir, 'data'));
    for (let i = 0; i <= MAX_CHARM_ASSET_FILES; i++) await writeFile(join(dir, 'data', `${i}.csv`), '1\n');
    await expect(charmAssets(dir)).rejects.toMatchObject({ code: 'AGENT_ERR_CHARM_LOAD', message: expect.stringMatching(/move data and build output out of the charm's folder/) });
  });
});
