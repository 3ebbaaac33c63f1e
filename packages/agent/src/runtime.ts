/**
 * Where this package is installed and the command lines that run its
 * compiled JavaScript (`pnpm build` writes dist/). Every piece of code that
 * starts an agent or the CLI as a process takes its command line from here:
 * plain `node <package>/dist/bin.js ...`, one process, no TypeScript loader.
 *
 * The package root is found by walking up from this module to the
 * package.json named `@rhizome/agent`, so it works from the sources (tests),
 * from dist/ (esbuild puts this module in a chunk) and from an npm install.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentError } from './errors';

export const AGENT_PACKAGE = '@rhizome/agent';
/** The compiled CLI entry, relative to the package root. */
export const CLI_BIN = join('dist', 'bin.js');

let root: { dir: string; version: string } | undefined;

function findRoot(): { dir: string; version: string } {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === AGENT_PACKAGE) return (root = { dir, version: pkg.version ?? '0.0.0' });
      } catch {
        // not ours: keep walking up
      }
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new AgentError('AGENT_ERR_NOT_BUILT', `cannot find the ${AGENT_PACKAGE} package above ${fileURLToPath(import.meta.url)}; reinstall rhizome`);
}

/** Absolute path of the installed @rhizome/agent package. */
export function agentPackageRoot(): string {
  return findRoot().dir;
}

/** The package's version (package.json). */
export function agentVersion(): string {
  try {
    return findRoot().version;
  } catch {
    return '0.0.0';
  }
}

/** Absolute path of the compiled CLI; an actionable error when it was never built. */
export function cliEntry(): string {
  const file = join(agentPackageRoot(), CLI_BIN);
  if (!existsSync(file)) {
    throw new AgentError('AGENT_ERR_NOT_BUILT', `the compiled CLI ${file} does not exist; run 'pnpm build' in the repository (agents and the CLI run compiled JavaScript)`);
  }
  return file;
}

export interface CommandLine {
  readonly command: string;
  readonly args: readonly string[];
}

/** `rhizome ARGS...` as a process: the current Node binary running the compiled CLI. */
export function rhizomeCommand(args: readonly string[]): CommandLine {
  return { command: process.execPath, args: [cliEntry(), ...args] };
}

/** The command line of an agent configured by `configFile` (see deploy's agent.yaml); `extra` flags follow. */
export function agentCommand(configFile: string, extra: readonly string[] = []): CommandLine {
  return rhizomeCommand(['agent', '--config', configFile, ...extra]);
}
