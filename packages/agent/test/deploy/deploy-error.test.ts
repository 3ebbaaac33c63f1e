/**
 * deploy / wait stop as soon as a unit is in `error` (retries exhausted),
 * with that unit's error line and how to resolve it, instead of waiting out
 * their whole timeout (issue 13 item 4).
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deploy, destroy, readDeployment, waitForConvergence } from '../../src/index';
import { AgentError } from '../../src/errors';

const CHARMS = join(import.meta.dirname, '../fixtures/charms');
let home = '';

afterAll(async () => {
  if (home !== '') {
    await destroy(home, { deployment: 'failing' }).catch(() => undefined);
    await rm(home, { recursive: true, force: true });
  }
});

describe('waiting for convergence with a unit in error', () => {
  it('deploy stops at once with the unit, handler, message and the resolve command', async () => {
    home = await mkdtemp(join(tmpdir(), 'hd-deploy-error-'));
    const bundle = join(home, 'bundle.yaml');
    await writeFile(
      bundle,
      `name: failing\nservices:\n  ok:\n    charm: ${join(CHARMS, 'faulty')}\n    units: 1\n  bad:\n    charm: ${join(CHARMS, 'fails-at-start')}\n    units: 1\n`,
    );
    const started = Date.now();
    const err = await deploy(bundle, { home, timeoutMs: 600_000, noFsync: true }).catch((e: unknown) => e);
    const ms = Date.now() - started;
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('AGENT_ERR_UNIT_ERROR');
    const msg = (err as Error).message;
    expect(msg).toMatch(/^bad\/0 is in error after 3 attempt\(s\): handler "install" failed on start: apt-get: unable to locate package hdfs/);
    expect(msg).toContain("rhizome resolve bad/0");
    expect(msg).toContain("rhizome logs bad/0");
    expect(msg).not.toMatch(/ok\/0/);
    // Process start-up plus three quick attempts (seconds, even on a loaded machine); far below the 600 s timeout.
    expect(ms).toBeLessThan(120_000);

    // What deploy made is private to the user (item 13): the deployment dir, each data dir, agent.out.
    const d0 = await readDeployment(home, 'failing');
    const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;
    expect(await mode(join(home, 'failing'))).toBe(0o700);
    for (const u of Object.values(d0.units)) {
      expect(await mode(u.dataDir)).toBe(0o700);
      expect(await mode(join(u.dataDir, 'agent.out'))).toBe(0o600);
      expect(await mode(join(u.dataDir, 'agent.yaml'))).toBe(0o600);
      // Configuration travels in agent.yaml, not on the command line every user can read in ps.
      const cmdline = (await readFile(`/proc/${u.pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
      if (cmdline.length > 1) {
        expect(cmdline).toContain('--config');
        expect(cmdline).not.toContain('--options-json');
      }
    }

    // `wait` says the same at once; it waits through the error only when told to.
    const d = await readDeployment(home, 'failing');
    const again = Date.now();
    await expect(waitForConvergence(d, { timeoutMs: 60_000 })).rejects.toMatchObject({ code: 'AGENT_ERR_UNIT_ERROR' });
    expect(Date.now() - again).toBeLessThan(10_000);
    await expect(waitForConvergence(d, { timeoutMs: 1_000, waitThroughErrors: true })).rejects.toThrow(/did not converge within 1 s/);
  }, 150_000);
});
