/**
 * What is copied to a machine: the agent (the CLI, bundled into one ES
 * module with its dependencies: the machine needs Node.js and nothing
 * else), the supervisor, and each charm (bundled the same way into
 * `charm.mjs`, so it loads without TypeScript tooling on the machine).
 *
 * Every artifact is named by the SHA-256 of its bytes
 * (`<machine dir>/cache/<hash>/<name>`): a redeploy copies only what
 * changed, and two deployments on one machine share what they have in
 * common. Artifacts are built with esbuild (the same bundler the benches
 * use); optional native speed-ups (msgpackr-extract, bufferutil,
 * utf-8-validate) stay external: their JavaScript fallbacks load instead.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { htmStandaloneFile, VENDOR_FILE } from '../dashboard/vendor';
import { AgentError } from '../errors';
import { agentPackageRoot, agentVersion } from '../runtime';

export interface Artifact {
  /** File name on the machine: agent.mjs, supervisor.mjs, charm.mjs. */
  readonly name: string;
  /** First 24 hex digits of the SHA-256 of `bytes`. */
  readonly hash: string;
  readonly bytes: Buffer;
}

/** An entry of this package: its TypeScript source where the sources are here, else its compiled file (pnpm build). */
function own(source: string, compiled: string): string {
  const root = agentPackageRoot();
  const ts = join(root, source);
  return existsSync(ts) ? ts : join(root, compiled);
}
const EXTERNAL = ['msgpackr-extract', 'bufferutil', 'utf-8-validate'];
// Bundled CommonJS dependencies (pino, ws) call require(): give the ES module one.
const BANNER = "import { createRequire as __rzCreateRequire } from 'node:module'; const require = __rzCreateRequire(import.meta.url);";

const built = new Map<string, Promise<Artifact>>();

async function bundle(key: string, name: string, entry: { file: string }): Promise<Artifact> {
  let promise = built.get(key);
  if (!promise) {
    promise = (async () => {
      let esbuild: typeof import('esbuild');
      try {
        esbuild = await import('esbuild');
      } catch (err) {
        throw new AgentError('AGENT_ERR_DEPLOY', `deploying to machines bundles the agent with esbuild, which is not installed here (${(err as Error).message}); run 'pnpm install'`, { cause: err });
      }
      const result = await esbuild.build({
        entryPoints: [entry.file],
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        write: false,
        external: EXTERNAL,
        banner: { js: BANNER },
        // No package.json travels with the bundle: its version goes in the code (runtime.ts).
        define: { __RHIZOME_VERSION__: JSON.stringify(agentVersion()) },
        logLevel: 'silent',
        legalComments: 'none',
        // Half the bytes to copy to every machine; names stay readable in stack traces.
        minifyWhitespace: true,
        minifySyntax: true,
      });
      const bytes = Buffer.from(result.outputFiles[0]!.contents);
      return { name, hash: createHash('sha256').update(bytes).digest('hex').slice(0, 24), bytes };
    })();
    built.set(key, promise);
    promise.catch(() => built.delete(key));
  }
  return promise;
}

/** The agent and CLI as one module: `node agent.mjs agent --config FILE`. */
export function agentArtifact(): Promise<Artifact> {
  return bundle('agent', 'agent.mjs', { file: own('src/cli/bin.ts', 'dist/bin.js') });
}

/**
 * The dashboard's browser module, to lie beside `agent` in its directory
 * (`<dir>/cache/<agent hash>/htm-preact.js`, where the bundled agent looks
 * for it: dashboard/vendor.ts). Named by the agent's hash, not its own.
 */
export async function dashboardVendorArtifact(agent: Artifact): Promise<Artifact> {
  return { name: VENDOR_FILE, hash: agent.hash, bytes: await readFile(htmStandaloneFile()) };
}

/** The supervisor (supervisor-main.ts). */
export function supervisorArtifact(): Promise<Artifact> {
  return bundle('supervisor', 'supervisor.mjs', { file: own('src/deploy/supervisor-main.ts', 'dist/supervisor.js') });
}

/** A charm folder's charm.ts as one module, `charm.mjs`. */
export async function charmArtifact(charmDir: string): Promise<Artifact> {
  try {
    return await bundle(`charm:${charmDir}`, 'charm.mjs', { file: join(charmDir, 'charm.ts') });
  } catch (err) {
    if (err instanceof AgentError) throw err;
    throw new AgentError('AGENT_ERR_CHARM_LOAD', `cannot bundle the charm in ${charmDir} for a machine: ${(err as Error).message}`, { cause: err });
  }
}
