import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = join(import.meta.dirname, '../../src/cli/main.ts');
const BIN = join(import.meta.dirname, '../../bin/rhizome.mjs');
let home = '';

function rhizome(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', env: { ...process.env, RHIZOME_HOME: home }, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'rz-cli-'));
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('rhizome CLI arguments and errors', () => {
  it('prints the version (also through bin/rhizome.mjs)', () => {
    const r = rhizome('version');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^rhizome \d+\.\d+\.\d+/);
    const b = spawnSync(process.execPath, [BIN, 'version'], { encoding: 'utf8', timeout: 60_000 });
    expect(b.status).toBe(0);
    expect(b.stdout).toMatch(/^rhizome /);
  });

  it.each([
    [['bogus'], /unknown command 'bogus'/],
    [['relate', 'a:b'], /missing required argument 'b'/],
    [['facts'], /missing required argument 'unit'/],
    [['status', '--frobnicate'], /unknown option '--frobnicate'/],
  ])('exits 2 with the usage for bad arguments: %j', (args, message) => {
    const r = rhizome(...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/Usage: rhizome|--help for usage/);
  });

  it('exits 1 with a clear message when there is nothing to talk to', () => {
    const r = rhizome('status');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: no deployment found in .*; run 'rhizome deploy BUNDLE' first/);
    const d = rhizome('members', '--data-dir', join(home, 'none'));
    expect(d.code).toBe(1);
    expect(d.stderr).toMatch(/no agent has served from data directory/);
    const u = rhizome('status', '--agent', 'http://127.0.0.1:1', '--token', 'x');
    expect(u.code).toBe(1);
    expect(u.stderr).toMatch(/^error: /);
  });

  it('refuses a bad bundle with exit 1 and the path of the bad field', () => {
    const r = rhizome('deploy', join(import.meta.dirname, '../fixtures/bundles/bad-endpoint.yaml'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/relations\.0: charm "counter-receiver" has no endpoint "nope"/);
  });

  it('refuses a bad agent configuration with exit 1', () => {
    const r = rhizome('agent', '--unit', 'NotAUnit', '--charm', 'x', '--data-dir', join(home, 'a'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unit: a unit name looks like "service\/0"/);
  });
});
