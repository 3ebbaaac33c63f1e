/** The shared wait helper: what it returns, how it fails, and that it is bounded. */
import { describe, expect, it } from 'vitest';
import { GiveUp, testSeed, until } from '../src/index';

describe('until', () => {
  it('returns the first value that is not undefined, null or false (0 and "" count)', async () => {
    let n = 0;
    expect(await until('the third try', () => (++n === 3 ? 'yes' : undefined), { intervalMs: 1 })).toBe('yes');
    expect(await until('zero', () => 0)).toBe(0);
    expect(await until('empty', async () => '')).toBe('');
    let m = 0;
    expect(await until('true after a false and a null', () => [false, null, true][m++], { intervalMs: 1 })).toBe(true);
  });

  it('retries a probe that throws, and names what it waited for and the last error when time is up', async () => {
    const started = performance.now();
    await expect(
      until(
        'the agent to answer',
        () => {
          throw new Error('connection refused');
        },
        { timeoutMs: 200, intervalMs: 20 },
      ),
    ).rejects.toThrow(/^timed out after \d+ ms \(\d+ attempt\(s\)\) waiting for the agent to answer; last error: connection refused$/);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('stops at once on GiveUp', async () => {
    const started = performance.now();
    await expect(
      until(
        'a child that exited',
        () => {
          throw new GiveUp('the child exited (1)');
        },
        10_000,
      ),
    ).rejects.toThrow('the child exited (1)');
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('does not wait on a probe that hangs past the deadline', async () => {
    const started = performance.now();
    await expect(until('a hung probe', () => new Promise<never>(() => {}), 100)).rejects.toThrow(/timed out .* waiting for a hung probe/);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('is bounded in attempts as well as time', async () => {
    let n = 0;
    await expect(until('never', () => void n++, { timeoutMs: 100, intervalMs: 0 })).rejects.toThrow(/never/);
    expect(n).toBeLessThanOrEqual(102);
  });

  it('refuses a nonsensical bound', async () => {
    await expect(until('x', () => true, 0)).rejects.toThrow(TypeError);
  });
});

describe('testSeed', () => {
  it('replays the seed from its variable and refuses a bad one', () => {
    process.env['RHIZOME_TEST_SUPPORT_SEED'] = '1234';
    try {
      expect(testSeed('RHIZOME_TEST_SUPPORT_SEED', 'until.test')).toBe(1234);
      process.env['RHIZOME_TEST_SUPPORT_SEED'] = 'x';
      expect(() => testSeed('RHIZOME_TEST_SUPPORT_SEED', 'until.test')).toThrow(/not a non-negative integer/);
    } finally {
      delete process.env['RHIZOME_TEST_SUPPORT_SEED'];
    }
    const a = testSeed('RHIZOME_TEST_SUPPORT_SEED', 'until.test');
    expect(Number.isSafeInteger(a) && a >= 0).toBe(true);
  });
});
