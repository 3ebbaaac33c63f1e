/**
 * The CLI run by a user who may not read the deployment home (deploy ran as
 * root, `rhizome status` as someone else): it said "no deployment found",
 * sending the operator to deploy again. It now says permission denied, to
 * whom, and what to do. Runs the built CLI as `nobody` (runuser), so it
 * needs root; skips with the reason otherwise.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { rhizomeCommand } from '../../src/runtime';

const run = promisify(execFile);
const why =
  process.getuid?.() !== 0 ? 'needs root (to run the CLI as another user)' : await run('runuser', ['-u', 'nobody', '--', 'true']).then(() => undefined, (e: Error) => `runuser -u nobody does not work here (${e.message.split('\n')[0]})`);
if (why) process.stderr.write(`skipping the permission test: ${why}\n`);

let home = '';
afterAll(async () => {
  if (home) await rm(home, { recursive: true, force: true });
});

describe.skipIf(why !== undefined)('the CLI as a user who may not read the deployments', () => {
  it('says permission denied, to whom, and what to do; not "no deployment"', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'rz-perm-'));
    await chmod(parent, 0o755);
    home = join(parent, 'home');
    await mkdir(join(home, 'web'), { recursive: true, mode: 0o700 });
    await writeFile(join(home, 'web', 'deployment.json'), JSON.stringify({ name: 'web', units: {} }), { mode: 0o600 });
    await chmod(home, 0o700);
    const cli = rhizomeCommand(['status', '--home', home]);
    const err = (await run('runuser', ['-u', 'nobody', '--', cli.command, ...cli.args]).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).toBe(1);
    expect(err.stderr).toContain(`cannot read ${home}: permission denied to user nobody`);
    expect(err.stderr).toMatch(/run rhizome as that user, or use another home with --home DIR/);
    // The same through --deployment, which reads the record directly.
    await chmod(home, 0o711);
    const named = rhizomeCommand(['machines', '--home', home, '--deployment', 'web']);
    const err2 = (await run('runuser', ['-u', 'nobody', '--', named.command, ...named.args]).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err2.stderr).toContain(`cannot read ${join(home, 'web')}`);
  });
});
