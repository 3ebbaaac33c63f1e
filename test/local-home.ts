/**
 * A test file's home for one deployment on this machine: a fresh temporary
 * directory before its tests (`root`, with `home` inside), the deployment
 * destroyed and the directory removed after; and the in-process CLI on that
 * home. The in-process CLI captures this process's stdout: call it one
 * command at a time.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { destroy } from '@rhizome/agent';
import { agentPackageRoot } from '../packages/agent/src/runtime';
import { rhizomeIn } from '../packages/agent/test/cli/harness';

export interface LocalHome {
  /** Set before the file's tests run. */
  root: string;
  home: string;
  /** Runs `rhizome ARGS` on the home; resolves with its stdout, rejects with its stderr when it fails. */
  ok(...args: string[]): Promise<string>;
  /** `rhizome facts UNIT --json`. */
  facts(unit: string): Promise<Record<string, unknown>>;
}

export function useLocalHome(deployment: string, tmpPrefix: string): LocalHome {
  const h: LocalHome = {
    root: '',
    home: '',
    async ok(...args) {
      const r = await rhizomeIn(h.home, ...args);
      if (r.code !== 0) throw new Error(`rhizome ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
      return r.stdout;
    },
    async facts(unit) {
      return JSON.parse(await h.ok('facts', unit, '--json')) as Record<string, unknown>;
    },
  };
  beforeAll(async () => {
    h.root = await mkdtemp(join(tmpdir(), tmpPrefix));
    h.home = join(h.root, 'home');
  });
  afterAll(async () => {
    if (!h.root) return;
    await destroy(h.home, { deployment }).catch(() => undefined);
    await rm(h.root, { recursive: true, force: true });
  }, 60_000);
  return h;
}

/**
 * Writes `<root>/bundle.yaml`: a counter-sender feeding `witnesses` units of
 * counter-witness (test charms), on this machine. Resolves with its path.
 */
export async function writeCounterBundle(h: LocalHome, deployment: string, witnesses: number): Promise<string> {
  const charms = join(agentPackageRoot(), 'test/fixtures/charms');
  const file = join(h.root, 'bundle.yaml');
  await writeFile(
    file,
    [
      `name: ${deployment}`,
      'services:',
      `  sender: { charm: ${join(charms, 'counter-sender')} }`,
      `  witness: { charm: ${join(charms, 'counter-witness')}, units: ${witnesses} }`,
      'relations:',
      '  - [sender:feed, witness:feed]',
      '',
    ].join('\n'),
  );
  return file;
}
