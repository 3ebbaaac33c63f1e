/**
 * Shared by the end-to-end tests of the example bundles (test/e2e-*.test.ts):
 * free ports, where a deployed unit's files are, and a
 * bundle copy with absolute charm paths (so a test can change options).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clientFor, readDeployment, unitOf, waitForConvergence, type AgentStatus } from '@rhizome/agent';
// For test/chaos.test.ts, which imports it from here; new tests import @rhizome/test-support.
export { until } from '@rhizome/test-support';

export const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** The working directory of a deployed unit: where its charm renders files. */
export function unitDir(home: string, deployment: string, unit: string): string {
  return join(home, deployment, unit.replace(/\//g, '-'), 'unit');
}

/** Waits until the deployment (re-read each poll) has converged. */
export async function converge(home: string, deployment: string, timeoutMs = 120_000): Promise<number> {
  return waitForConvergence(await readDeployment(home, deployment), { timeoutMs, reload: () => readDeployment(home, deployment) });
}

export async function unitStatus(home: string, deployment: string, unit: string): Promise<AgentStatus> {
  const d = await readDeployment(home, deployment);
  const client = await clientFor(unitOf(d, unit), 5_000);
  return client.get<AgentStatus>('/status');
}

/** Writes a bundle file whose charm paths point into this repository's charms/. */
export async function writeBundle(dir: string, yaml: string): Promise<string> {
  const file = join(dir, 'bundle.yaml');
  await writeFile(file, yaml.replace(/charm: charms\//g, `charm: ${join(ROOT, 'charms')}/`));
  return file;
}

/**
 * Safety net for the web-lb tests: the lb's nginx is a daemon (its own
 * session) that a failed test could leave behind; stop it by the pid file in
 * the unit's dir, only if that pid still is this unit's nginx.
 */
export async function stopLeftoverNginx(home: string, deployment: string, unit = 'lb/0'): Promise<void> {
  const lbDir = unitDir(home, deployment, unit);
  const pid = Number((await readFile(join(lbDir, 'nginx.pid'), 'utf8').catch(() => '')).trim());
  const cmdline = pid > 0 ? await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '') : '';
  if (cmdline.includes('nginx') && cmdline.includes(lbDir)) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}
