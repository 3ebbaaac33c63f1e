/**
 * Charms stay TypeScript for their authors; agents run them compiled. This
 * module compiles a charm folder's `charm.ts` ahead of time (deploy,
 * add-unit, `rhizome build-charm DIR`) into one ESM file with esbuild:
 *
 * - the framework (`@rhizome/agent|engine|relations|gossip`, and the
 *   released package's `rhizome`, `rhizome/<lib>` names) stays external and
 *   is rewritten to the absolute file of the copy this CLI runs, so an agent
 *   loads the framework once, whatever the charm folder has installed;
 * - everything else the charm imports (its own files, helper packages, npm
 *   dependencies) is bundled in;
 * - `import.meta.url` keeps meaning the *source* file, so charms that find
 *   their playbooks next to their code still do from the cache.
 *
 * The result is cached by content hash under the charm cache
 * (`$RHIZOME_CHARM_CACHE`, else `$XDG_CACHE_HOME/rhizome/charms`, else
 * `~/.cache/rhizome/charms`). The key covers the compiled output, every file
 * esbuild read, the charm folder's own TypeScript and config files (a type
 * change that leaves the JavaScript alone must still be type-checked) and
 * the framework copy, so an unchanged charm is neither recompiled to disk
 * nor type-checked twice.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AgentError } from '../errors';
import { agentVersion } from '../runtime';
import { CHARM_SOURCE, frameworkModules } from './framework';

export { CHARM_SOURCE, frameworkModules } from './framework';

export const COMPILED_CHARM = 'charm.mjs';
const TYPECHECKED_MARK = 'typechecked';
/** Charm folder files hashed into the key, at most (node_modules and dot folders are skipped). */
const MAX_HASHED_FILES = 2000;

export interface BuildCharmOptions {
  /** Where compiled charms are cached (default `charmCacheDir()`). */
  readonly cacheDir?: string;
  /** Type-check the charm before accepting it (default true). */
  readonly typecheck?: boolean;
}

export interface CompiledCharm {
  /** Absolute path of the compiled module (`<cache>/<hash>/charm.mjs`). */
  readonly module: string;
  readonly hash: string;
  /** True when an identical build was already in the cache. */
  readonly cached: boolean;
  /** True when this charm (this hash) passed the type check. */
  readonly typechecked: boolean;
}

/** The default charm cache folder. */
export function charmCacheDir(): string {
  const explicit = process.env['RHIZOME_CHARM_CACHE'];
  if (explicit) return resolve(explicit);
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg ? resolve(xdg) : join(homedir(), '.cache'), 'rhizome', 'charms');
}

async function charmFiles(dir: string, into: string[]): Promise<void> {
  if (into.length >= MAX_HASHED_FILES) return;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (e.name === 'node_modules' || e.name.startsWith('.') || e.name === 'dist') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) await charmFiles(p, into);
    else if (e.isFile() && /\.(ts|mts|cts|json)$/.test(e.name) && into.length < MAX_HASHED_FILES) into.push(p);
  }
}

/**
 * esbuild escapes non-ASCII characters in strings, regular expressions and
 * identifiers, but comments it carries over keep theirs, and one `\u2014` in
 * a bundled comment (zod has one) makes V8 hold the whole module's source as
 * a two-byte string: twice the heap, for as long as the agent runs (the
 * hadoop charms: 187 KB of source held as 365 KB). Only comments are left to
 * escape, so the code means the same; per UTF-16 unit, as scripts/build.mjs
 * does for the framework's bundles.
 */
function asciiOnly(code: string): string {
  return code.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

let tmpSeq = 0;

const LOADERS: Record<string, 'ts' | 'js'> = { '.ts': 'ts', '.mts': 'ts', '.cts': 'ts', '.js': 'js', '.mjs': 'js', '.cjs': 'js' };

/** Compiles (or finds in the cache) a charm folder's charm.ts; see the module comment. */
export async function buildCharm(charmDir: string, opts: BuildCharmOptions = {}): Promise<CompiledCharm> {
  const dir = resolve(charmDir);
  const source = join(dir, CHARM_SOURCE);
  if (!existsSync(source)) {
    throw new AgentError('AGENT_ERR_CHARM_LOAD', `cannot load charm ${source}: no ${CHARM_SOURCE} in ${dir}; a charm is a folder whose ${CHARM_SOURCE} default-exports defineCharm({...})`);
  }
  const framework = frameworkModules();
  const esbuild = await import('esbuild');
  let result: Awaited<ReturnType<typeof esbuild.build>>;
  try {
    result = await esbuild.build({
      absWorkingDir: dir,
      entryPoints: [source],
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      write: false,
      metafile: true,
      outfile: join(dir, COMPILED_CHARM),
      // A map file beside charm.mjs, not inline: an inline map is a base64 copy of every bundled source
      // inside the module's text, which V8 keeps in the agent's heap for as long as it runs (~2 MB for a
      // charm bundling zod). Node reads the file only with --enable-source-maps.
      sourcemap: 'linked',
      logLevel: 'silent',
      // Bundled CommonJS dependencies may call require(): give the ESM output one.
      banner: { js: "import { createRequire as __rhizomeCreateRequire } from 'node:module'; const require = __rhizomeCreateRequire(import.meta.url);" },
      plugins: [
        {
          name: 'rhizome-framework',
          setup(b) {
            b.onResolve({ filter: /^(@rhizome\/(agent|engine|relations|gossip)|rhizome(\/(engine|relations|gossip))?)$/ }, (args) => {
              const file = framework[args.path];
              return file ? { path: pathToFileURL(file).href, external: true } : undefined;
            });
            b.onLoad({ filter: /\.[cm]?[jt]s$/ }, async (args) => {
              if (args.path.includes(`${'/'}node_modules${'/'}`)) return undefined;
              const text = await readFile(args.path, 'utf8');
              const url = pathToFileURL(args.path).href;
              const contents = text
                .replace(/\bimport\.meta\.url\b/g, JSON.stringify(url))
                .replace(/\bimport\.meta\.filename\b/g, JSON.stringify(args.path))
                .replace(/\bimport\.meta\.dirname\b/g, JSON.stringify(resolve(args.path, '..')));
              return { contents, loader: LOADERS[extname(args.path)] ?? 'ts' };
            });
          },
        },
      ],
    });
  } catch (err) {
    const errors = (err as { errors?: { text: string; location?: { file: string; line: number; column: number; lineText: string } | null }[] }).errors ?? [];
    const detail = errors.length > 0 ? errors.slice(0, 10).map((e) => (e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : e.text)).join('\n') : (err as Error).message;
    throw new AgentError('AGENT_ERR_CHARM_LOAD', `cannot compile charm ${source}:\n${detail}`, { cause: err });
  }
  const outputs = result.outputFiles ?? [];
  const code = asciiOnly(outputs.find((f) => f.path.endsWith(COMPILED_CHARM))?.text ?? '');
  const map = outputs.find((f) => f.path.endsWith(`${COMPILED_CHARM}.map`))?.text;
  const hash = createHash('sha256');
  hash.update(`rhizome ${agentVersion()} esbuild ${esbuild.version}\n`);
  for (const [name, file] of Object.entries(framework).sort()) {
    const s = await stat(file);
    hash.update(`${name} ${file} ${s.size} ${s.mtimeMs}\n`);
  }
  const files = Object.keys(result.metafile?.inputs ?? {})
    .filter((f) => !f.startsWith('file:'))
    .map((f) => resolve(dir, f));
  await charmFiles(dir, files);
  for (const f of [...new Set(files)].sort()) {
    hash.update(`${f}\n`);
    hash.update(await readFile(f).catch(() => Buffer.alloc(0)));
  }
  hash.update(code);
  const key = hash.digest('hex').slice(0, 32);
  const cacheDir = resolve(opts.cacheDir ?? charmCacheDir());
  const entry = join(cacheDir, key);
  const module = join(entry, COMPILED_CHARM);
  const cached = existsSync(module);
  let typechecked = existsSync(join(entry, TYPECHECKED_MARK));
  if (opts.typecheck !== false && !typechecked) {
    const { typecheckCharm } = await import('./typecheck');
    await typecheckCharm(dir);
    typechecked = true;
  }
  await mkdir(entry, { recursive: true });
  if (!cached) {
    // The map first: once charm.mjs exists the entry counts as cached.
    if (map !== undefined) await writeFile(`${module}.map`, map);
    // A name of its own per write: one process may build the same charm twice at once (upgrade-charm
    // loads it for each unit), and a temp name shared by the two made the second rename fail.
    const tmp = `${module}.${process.pid}.${++tmpSeq}.tmp`;
    await writeFile(tmp, code);
    await rename(tmp, module);
  }
  if (typechecked) await writeFile(join(entry, TYPECHECKED_MARK), `${source}\n`);
  return Object.freeze({ module, hash: key, cached, typechecked });
}
