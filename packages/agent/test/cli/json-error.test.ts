/**
 * How a failed command ends with --json (cli/program.ts runProgram): the
 * error as JSON on stdout, and, for an error that carries what was done
 * before it (UpgradeError: the per-unit table), that beside it; without
 * --json, only `error: ...` on stderr.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createProgram, runProgram } from '../../src/cli/program';
import { UpgradeError, type UpgradeReport } from '../../src/deploy/upgrade-agents';

const report: UpgradeReport = {
  deployment: 'd',
  version: '2.0.0',
  units: [
    { unit: 'a/0', from: '1.0.0', now: '1.0.0', outcome: 'failed', detail: 'did not start; restarted on its previous release' },
    { unit: 'b/0', from: '1.0.0', now: '1.0.0', outcome: 'pending' },
  ],
};

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((stderr += String(s)), true));
  const program = createProgram([
    (p) => {
      p.command('fail-upgrade').action(() => {
        throw new UpgradeError('upgrade to 2.0.0 stopped at a/0', report);
      });
      p.command('fail-plain').action(() => {
        throw new Error('plain failure');
      });
    },
  ]);
  try {
    return { code: await runProgram(program, argv), stdout, stderr };
  } finally {
    vi.restoreAllMocks();
  }
}

describe('a failed command with --json', () => {
  afterEach(() => vi.restoreAllMocks());

  it('puts the per-unit table of a failed upgrade beside the error', async () => {
    const r = await run('--json', 'fail-upgrade');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ ...report, error: { code: 'AGENT_ERR_UPGRADE', message: 'upgrade to 2.0.0 stopped at a/0' } });
    expect(r.stderr).toMatch(/^error: upgrade to 2\.0\.0 stopped at a\/0/);
  });

  it('gives other errors alone, and prints no JSON without --json', async () => {
    const plain = await run('--json', 'fail-plain');
    expect(JSON.parse(plain.stdout)).toEqual({ error: { code: 'AGENT_ERR_INTERNAL', message: 'plain failure' } });
    const text = await run('fail-upgrade');
    expect(text.code).toBe(1);
    expect(text.stdout).toBe('');
  });
});
