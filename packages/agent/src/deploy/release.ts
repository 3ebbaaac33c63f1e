/**
 * What is copied to a machine: the agent (the CLI, bundled into one ES
 * module with its dependencies: the machine needs Node.js and nothing
 * else), the supervisor, and each charm (bundled the same way into
 * `charm.mjs`, so it loads without TypeScript tooling on the machine).
 *
 * Every artifact is named by the SHA-256 of its bytes
 * (`<machine dir>/cache/<hash>/<name>`): a redeploy copies only what
 * changed, and two deployments on one machine share what they have in
 * common. A charm's other files (an Ansible playbook and its templates, a
 * script) go beside its `charm.mjs` under the same hash, in the layout of
 * the charm's folder, and the charm's `import.meta.url` is rewritten to where
 * its source file would be in that layout: a charm that finds its playbook
 * next to its code (`new URL('../playbook/site.yml', import.meta.url)`)
 * finds it on the machine too, which has no copy of the charm's folder.
 * Artifacts are built with esbuild (the same bundler the benches use);
 * optional native speed-ups (msgpackr-extract, bufferutil, utf-8-validate)
 * stay external: their JavaScript fallbacks load instead.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { Plugin } from 'esbuild';
import { htmStandaloneFile, VENDOR_FILE } from '../dashboard/vendor';
import { AgentError } from '../errors';
import { agentPackageRoot, agentVersion } from '../runtime';
import { charmAssets } from './charm-assets';

export interface Artifact {
  /** File name on the machine: agent.mjs, supervisor.mjs, charm.mjs. */
  readonly name: string;
  /** First 24 hex digits of the SHA-256 of `bytes`. */
  readonly hash: string;
  readonly bytes: Buffer;
  /** File mode on the machine (default 0644). */
  readonly mode?: number;
}

/** An entry of this package: its TypeScript source where the sources are here, else its compiled file (pnpm build). */
function own(source: string, compiled: string): string {
  const root = agentPackageRoot();
  const ts = join(root, source);
  return existsSync(ts) ? ts : join(root, compiled);
}
// An agent on a machine never compiles or type-checks a charm (deploy did, before copying it): the
// compiler and the bundler stay out. TypeScript alone was 6.4 of the agent bundle's 8.3 MB, and a
// machine's agent held 120 MB resident against 60 for the same agent run from this package's dist.
const EXTERNAL = ['msgpackr-extract', 'bufferutil', 'utf-8-validate', 'typescript', 'esbuild'];
// Bundled CommonJS dependencies (pino, ws) call require(): give the ES module one.
const BANNER = "import { createRequire as __rzCreateRequire } from 'node:module'; const require = __rzCreateRequire(import.meta.url);";

const built = new Map<string, Promise<Artifact>>();

async function bundle(key: string, name: string, entry: { file: string }, plugins: Plugin[] = []): Promise<Artifact> {
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
        plugins,
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

/**
 * A charm folder's charm.ts as one module, `charm.mjs`, then its other files
 * (charm-assets.ts), all under one hash that covers them all: the machine's
 * `cache/<hash>/` is the charm's folder as the agent there sees it.
 */
export function charmArtifacts(charmDir: string): Promise<readonly [Artifact, ...Artifact[]]> {
  const dir = resolve(charmDir);
  let promise = charms.get(dir);
  if (!promise) {
    promise = (async () => {
      let module: Artifact;
      try {
        module = await bundle(`charm:${dir}`, 'charm.mjs', { file: join(dir, 'charm.ts') }, [charmFileUrls(dir)]);
      } catch (err) {
        if (err instanceof AgentError) throw err;
        throw new AgentError('AGENT_ERR_CHARM_LOAD', `cannot bundle the charm in ${dir} for a machine: ${(err as Error).message}`, { cause: err });
      }
      const assets = await charmAssets(dir);
      const hash = createHash('sha256').update(module.bytes);
      for (const a of assets) hash.update(`\0${a.name}\0${a.mode}\0`).update(a.bytes);
      const h = hash.digest('hex').slice(0, 24);
      return [{ ...module, hash: h }, ...assets.map((a) => ({ ...a, hash: h }))] as const;
    })();
    charms.set(dir, promise);
    promise.catch(() => charms.delete(dir));
  }
  return promise;
}

const charms = new Map<string, Promise<readonly [Artifact, ...Artifact[]]>>();

/** The charm's module alone (its hash names the folder its assets share). */
export async function charmArtifact(charmDir: string): Promise<Artifact> {
  return (await charmArtifacts(charmDir))[0];
}

/**
 * Rewrites `import.meta.url` (and `.filename`, `.dirname`) in the charm's own
 * files to the place the file has under the bundle's folder: `new URL('src/x.ts',
 * import.meta.url)` at run time, `import.meta.url` being charm.mjs's. Files
 * outside the charm's folder (dependencies) keep charm.mjs's own URL.
 */
function charmFileUrls(dir: string): Plugin {
  return {
    name: 'rhizome-charm-file-urls',
    setup(b) {
      b.onLoad({ filter: /\.[cm]?[jt]s$/ }, async (args) => {
        const rel = relative(dir, args.path);
        if (rel.startsWith('..') || rel.split(sep).includes('node_modules')) return undefined;
        const text = await readFile(args.path, 'utf8');
        if (!text.includes('import.meta')) return undefined;
        const url = `new URL(${JSON.stringify(rel.split(sep).join('/'))}, import.meta.url)`;
        const contents = text
          .replace(/\bimport\.meta\.url\b/g, `${url}.href`)
          .replace(/\bimport\.meta\.filename\b/g, `decodeURIComponent(${url}.pathname)`)
          .replace(/\bimport\.meta\.dirname\b/g, `decodeURIComponent(new URL('.', ${url}).pathname).replace(/\\/$/, '')`);
        return { contents, loader: /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js' };
      });
    },
  };
}
