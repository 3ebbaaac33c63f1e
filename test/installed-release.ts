/**
 * Another installed release of rhizome, for upgrade tests: a copy of the
 * agent package as `npm install` leaves one (package.json with its own
 * version, the compiled dist/, its dependencies beside it), and its CLI run
 * as a process of its own, as an operator runs the release they installed.
 */
import { spawn } from 'node:child_process';
import { cp, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { agentPackageRoot } from '../packages/agent/src/runtime';

/** Installs a release under `dir` with `version`; `patch` is prepended to its agent's entry. Resolves with its CLI entry. */
export async function installRelease(dir: string, version: string, patch = ''): Promise<string> {
  const pkg = join(dir, 'agent');
  await mkdir(pkg, { recursive: true });
  const manifest = JSON.parse(await readFile(join(agentPackageRoot(), 'package.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(join(pkg, 'package.json'), JSON.stringify({ ...manifest, version }, null, 2));
  await cp(join(agentPackageRoot(), 'dist'), join(pkg, 'dist'), { recursive: true });
  await symlink(join(agentPackageRoot(), 'node_modules'), join(pkg, 'node_modules'));
  if (patch) await writeFile(join(pkg, 'dist/bin.js'), `${patch}\n${await readFile(join(pkg, 'dist/bin.js'), 'utf8')}`);
  return join(pkg, 'dist/rhizome.cjs');
}

/** Runs an installed release's CLI (`entry`) with `--home home`; resolves when it exits. */
export function runRelease(entry: string, home: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [entry, '--home', home, ...args], { env: process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
