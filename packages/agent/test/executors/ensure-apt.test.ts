import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const script = join(resolve(dirname(fileURLToPath(import.meta.url)), '../../../..'), 'scripts/ensure-apt.sh');

describe('scripts/ensure-apt.sh', () => {
  it('is quiet and does nothing for packages already installed', () => {
    // Essential Debian packages: always installed, so nothing may be touched.
    const res = spawnSync(script, ['coreutils', 'bash'], { encoding: 'utf8', timeout: 60_000 });
    expect(res.status).toBe(0);
    expect(res.stdout).toBe('');
    expect(res.stderr).toBe('');
  });

  it('prints usage and exits 2 without arguments', () => {
    const res = spawnSync(script, [], { encoding: 'utf8' });
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('usage: scripts/ensure-apt.sh PACKAGE...');
  });
});
