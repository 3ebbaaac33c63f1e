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
/**
 * The compiled CLI entry, relative to the package root: the `rhizome`
 * command (CommonJS; quick commands stay in CommonJS, the others load the
 * ES module CLI, see cli/launcher.ts).
 */
export const CLI_BIN = join('dist', 'rhizome.cjs');
/** The ES module CLI, which agents run directly (`agent` is not a quick command). */
const AGENT_BIN = join('dist', 'bin.js');

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

/**
 * The release's version, written into the code by the bundler that makes
 * the agent copied to machines (deploy/release.ts): there, no package.json
 * lies beside the code. Undefined in the package's own build (dist/), which
 * reads its package.json.
 */
declare const __RHIZOME_VERSION__: string | undefined;

/** The package's version (package.json, or the one bundled into a machine's agent). */
export function agentVersion(): string {
  if (typeof __RHIZOME_VERSION__ === 'string') return __RHIZOME_VERSION__;
  try {
    return findRoot().version;
  } catch {
    return '0.0.0';
  }
}

/** Absolute path of the compiled CLI; an actionable error when it was never built. */
export function cliEntry(): string {
  return compiled(CLI_BIN);
}

function compiled(entry: string): string {
  const file = join(agentPackageRoot(), entry);
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

/**
 * V8 flags of an agent process: resident memory over peak speed, since an
 * agent is mostly idle between gossip rounds (issue 11: a hadoop-datanode
 * agent 76 -> ~60 MB; start to mesh membership unchanged).
 *   --max-semi-space-size=2  the young generation stops growing at 2 x 2 MB
 *                            (default 2 x 16 MB, which an agent's start-up
 *                            fills once and keeps resident): ~10 MB;
 *   --single-threaded        no V8 background threads: garbage collection
 *                            and optimizing compilation run on the main
 *                            thread, between events; their threads' malloc
 *                            arenas and stacks are not created: ~4 MB;
 *   --gc-memory-reducer-start-delay-ms=2000
 *                            V8's memory reducer (full collections that
 *                            hand free heap pages back once a process goes
 *                            quiet) looks 2 s after a collection instead of
 *                            8: an agent that has converged is back to its
 *                            steady ~60 MB within seconds, not ~15 s later.
 *                            It acts only while allocation is slow, so a
 *                            busy agent is not slowed.
 * Not --max-semi-space-size=1 (~10% slower engine runs) nor --no-opt or
 * --lite-mode (3.4 MB of the node binary's optimizing compiler stay out of
 * memory, but engine throughput falls to a third).
 * Every process that runs an agent takes them from here (local deploys, the
 * supervisor's command line on SSH machines).
 */
export const AGENT_NODE_FLAGS: readonly string[] = Object.freeze(['--max-semi-space-size=2', '--single-threaded', '--gc-memory-reducer-start-delay-ms=2000']);

/** The command line of an agent configured by `configFile` (see deploy's agent.yaml); `extra` flags follow. */
export function agentCommand(configFile: string, extra: readonly string[] = []): CommandLine {
  return { command: process.execPath, args: [...AGENT_NODE_FLAGS, compiled(AGENT_BIN), 'agent', '--config', configFile, ...extra] };
}
