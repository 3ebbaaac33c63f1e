/**
 * The unit's own nginx: where its files are and how to stop it. Starting and
 * reloading are the playbook's job (playbook/site.yml); stopping happens
 * when the agent stops, outside any run, so it is plain code here.
 */
import { execFile } from 'node:child_process';
import { access, constants, readFile } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkloadPidFile } from '@rhizome/agent';


/** The playbook the charm runs. */
export const PLAYBOOK = fileURLToPath(new URL('../playbook/site.yml', import.meta.url));

export function nginxFiles(dir: string) {
  return { conf: join(dir, 'nginx.conf'), pid: join(dir, 'nginx.pid'), errorLog: join(dir, 'error.log') };
}

/**
 * The unit's nginx master as a workload of the charm (`workloads`): its pid
 * file, and what its command line holds. nginx retitles the master
 * `nginx: master process <its arguments>`, and the playbook starts it with
 * `-p <unit dir>`: a pid without both is not this unit's nginx.
 */
export function nginxWorkload(dir: string): WorkloadPidFile {
  return { name: 'nginx', pidFile: nginxFiles(dir).pid, cmdline: ['nginx: master process', `-p ${dir} `] };
}

/** The pid of the unit's nginx master, if its pid file names a live process. */
export async function nginxPid(dir: string): Promise<number | undefined> {
  const text = await readFile(nginxFiles(dir).pid, 'utf8').catch(() => '');
  const pid = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** Asks the unit's nginx to finish its requests and exit (`-s quit`); a no-op when none runs. */
export async function stopNginx(dir: string, nginxBin = 'nginx', timeoutMs = 10_000): Promise<void> {
  if ((await nginxPid(dir)) === undefined) return;
  const f = nginxFiles(dir);
  await new Promise<void>((resolve) => {
    execFile(nginxBin, ['-p', dir, '-c', f.conf, '-e', f.errorLog, '-s', 'quit'], { timeout: timeoutMs }, () => resolve());
  });
  // Wait (bounded) for the master to remove its pid file.
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && (await nginxPid(dir)) !== undefined) await new Promise((r) => setTimeout(r, 50));
}

export class NginxMissingError extends Error {
  readonly code = 'LB_ERR_NGINX_MISSING';
  constructor(program: string) {
    super(`'${program}' is not installed (not found on PATH); install Debian's nginx with 'scripts/ensure-apt.sh nginx' (the lb runs its own nginx master per unit, never the system service), or set the lb option "nginx-bin" to its path`);
    this.name = 'NginxMissingError';
  }
}

/** Resolves a program name on PATH (or checks a path); throws NginxMissingError when it is not there. */
export async function findNginx(program: string, path = process.env['PATH'] ?? ''): Promise<string> {
  const candidates = isAbsolute(program) || program.includes('/') ? [program] : path.split(delimiter).filter(Boolean).map((d) => join(d, program));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  throw new NginxMissingError(program);
}
