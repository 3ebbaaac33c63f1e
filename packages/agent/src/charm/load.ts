/**
 * Loading a charm: `import()` of its compiled module (`charmModule`, written
 * by deploy or `rhizome build-charm`; see compile.ts), or, without one, of
 * `<charmDir>/charm.ts` itself where the process can load TypeScript (tests,
 * tsx) and else of a fresh compile of it (in a process of its own,
 * compile-child.ts). Then every check that can fail before the
 * agent touches the mesh: the default export is a charm definition, its
 * metadata parses, its interfaces are known, and its handlers compile (a
 * handler without preconditions is refused by the engine). Any failure is an
 * AgentError `AGENT_ERR_CHARM_LOAD` naming the file, so start-up stops with a
 * message that says where to look.
 */
import { access } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Engine, type HandlerSpec } from '@rhizome/engine';
import { InterfaceRegistry, parseCharmMetadata, type CharmMetadata, type InterfaceDefinition } from '@rhizome/relations';
import { AgentError } from '../errors';
import { isWorkloadDataDir } from './workload-data-dir';
import type { CharmDefinition, UnitContext, WorkloadPidFile } from './define';

export const CHARM_FILE = 'charm.ts';
/** A charm bundled into one module, as copied to machines. */
export const BUNDLED_CHARM_FILE = 'charm.mjs';

export interface LoadedCharm {
  /** Absolute path of the charm module. */
  readonly file: string;
  readonly definition: CharmDefinition;
  readonly metadata: CharmMetadata;
  /** The interfaces the charm declares. */
  readonly interfaces: InterfaceRegistry;
}

function fail(file: string, message: string, cause?: unknown): AgentError {
  return new AgentError('AGENT_ERR_CHARM_LOAD', `cannot load charm ${file}: ${message}`, cause === undefined ? undefined : { cause });
}

/** Imports the charm: its compiled module when given, else charm.ts as is when TypeScript loads here, else compiled now. */
async function importCharm(file: string, charmDir: string, charmModule: string | undefined): Promise<{ default?: unknown }> {
  const load = async (path: string): Promise<{ default?: unknown }> => {
    try {
      return (await import(pathToFileURL(path).href)) as { default?: unknown };
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_UNKNOWN_FILE_EXTENSION' && path === file && charmModule === undefined) throw err;
      throw fail(path, `the module failed to load: ${err instanceof Error ? err.message : String(err)}`, err);
    }
  };
  if (charmModule !== undefined) {
    try {
      await access(charmModule);
    } catch (err) {
      throw fail(file, `its compiled module ${charmModule} is missing; run 'rhizome build-charm ${resolve(charmDir)}' (deploy and add-unit do it)`, err);
    }
    return load(charmModule);
  }
  try {
    return await load(file);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err;
  }
  // Plain Node: compile it (esbuild, cached; not type-checked: deploy and build-charm do that), in a process
  // of its own: esbuild would otherwise stay in this one (compile-child.ts).
  const { compileCharmInChild } = await import('./compile-child');
  return load(await compileCharmInChild(charmDir));
}

/**
 * Imports and checks a charm; does not build its handlers (see
 * `buildHandlers`). `charmModule` is the compiled charm (see compile.ts).
 */
export async function loadCharm(charmDir: string, charmModule?: string): Promise<LoadedCharm> {
  let file = resolve(charmDir, CHARM_FILE);
  try {
    await access(file);
  } catch (err) {
    // A charm copied to a machine is bundled (deploy/release.ts): charm.mjs, no TypeScript.
    const bundled = resolve(charmDir, BUNDLED_CHARM_FILE);
    if (!(await access(bundled).then(() => true, () => false))) {
      throw fail(file, `no ${CHARM_FILE} in ${resolve(charmDir)}; a charm is a folder whose ${CHARM_FILE} default-exports defineCharm({...})`, err);
    }
    file = bundled;
  }
  const mod = await importCharm(file, charmDir, charmModule);
  const def = mod.default as Partial<CharmDefinition> | undefined;
  if (def === null || typeof def !== 'object') {
    throw fail(file, 'its default export is not a charm; write `export default defineCharm({ metadata, handlers })`');
  }
  if (typeof def.handlers !== 'function') {
    throw fail(file, '`handlers` must be a function (unit) => HandlerSpec[]');
  }
  if (def.watch !== undefined && typeof def.watch !== 'function') throw fail(file, '`watch` must be a function (unit) => string[]');
  if (def.stop !== undefined && typeof def.stop !== 'function') throw fail(file, '`stop` must be a function (unit) => void');
  if (def.workloads !== undefined && typeof def.workloads !== 'function') throw fail(file, '`workloads` must be a function (unit) => [{ name, pidFile, cmdline }]');
  let metadata: CharmMetadata;
  try {
    metadata = parseCharmMetadata(def.metadata);
  } catch (err) {
    throw fail(file, err instanceof Error ? err.message : String(err), err);
  }
  const interfaces = new InterfaceRegistry();
  try {
    const own: unknown = def.interfaces;
    if (own !== undefined) {
      if (!Array.isArray(own)) throw new Error('`interfaces` must be an array of defineInterface() results');
      for (const i of own as InterfaceDefinition[]) if (!interfaces.has(i.name)) interfaces.register(i);
    }
    // The agent knows no interface of its own: each is a charm's (domain interfaces live next to their charms).
    for (const [name, ep] of Object.entries(metadata.endpoints)) {
      if (!interfaces.has(ep.interface)) {
        throw new Error(
          `endpoint "${name}" speaks interface "${ep.interface}", which the charm does not declare; add its defineInterface() result to \`interfaces\` ` +
            `(the examples' http and dfs-slave are exported by @rhizome-charms/kit)${interfaces.names().length > 0 ? `; declared: ${interfaces.names().join(', ')}` : ''}`,
        );
      }
    }
  } catch (err) {
    throw fail(file, err instanceof Error ? err.message : String(err), err);
  }
  return Object.freeze({ file, definition: def as CharmDefinition, metadata, interfaces });
}

/** Builds a unit's handlers and checks that they compile (the engine's own checks), naming the file on failure. */
export function buildHandlers(charm: LoadedCharm, unit: UnitContext): readonly HandlerSpec[] {
  let handlers: readonly HandlerSpec[];
  try {
    handlers = charm.definition.handlers(unit);
  } catch (err) {
    throw fail(charm.file, `handlers(unit) threw: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  if (!Array.isArray(handlers)) throw fail(charm.file, 'handlers(unit) must return an array of handlers');
  try {
    // Compiles and validates every handler (and, with declared facts, every
    // precondition's fact name); throws EngineError naming the handler.
    new Engine({ handlers, ...(charm.definition.facts !== undefined ? { facts: charm.definition.facts } : {}) });
  } catch (err) {
    throw fail(charm.file, err instanceof Error ? err.message : String(err), err);
  }
  return handlers;
}

/** Evaluates one of the charm's per-unit declarations; a throw becomes a charm load error naming it. */
function declaration<T>(charm: LoadedCharm, what: string, evaluate: () => T): T {
  try {
    return evaluate();
  } catch (err) {
    throw fail(charm.file, `${what} threw: ${err instanceof Error ? err.message : String(err)}`, err);
  }
}

/** The files a charm asks to watch, resolved against the unit's dir. */
export function watchedFiles(charm: LoadedCharm, unit: UnitContext): string[] {
  const watch = charm.definition.watch;
  if (!watch) return [];
  const files = declaration(charm, 'watch(unit)', () => watch(unit));
  if (!Array.isArray(files) || !files.every((f) => typeof f === 'string' && f !== '')) {
    throw fail(charm.file, 'watch(unit) must return an array of file paths');
  }
  return files.map((f) => resolve(unit.dir, f));
}

/**
 * The workload daemons a charm declares for a unit (`workloads(unit)`),
 * checked, with pid files resolved against the unit's dir. A declaration
 * that cannot be trusted to identify its daemon (no cmdline strings, a
 * duplicate name) is a charm load error naming the file.
 */
export function declaredWorkloads(charm: LoadedCharm, unit: UnitContext): WorkloadPidFile[] {
  const workloads = charm.definition.workloads;
  if (!workloads) return [];
  const declared = declaration(charm, 'workloads(unit)', () => workloads(unit));
  if (!Array.isArray(declared)) throw fail(charm.file, 'workloads(unit) must return an array of { name, pidFile, cmdline }');
  const names = new Set<string>();
  return declared.map((w: Partial<WorkloadPidFile>, i) => {
    const what = `workloads(unit)[${i}]`;
    if (typeof w?.name !== 'string' || w.name === '') throw fail(charm.file, `${what}.name must be a non-empty string (what to call the daemon in messages)`);
    if (names.has(w.name)) throw fail(charm.file, `${what}: the name "${w.name}" is declared twice; give each workload its own name`);
    names.add(w.name);
    if (typeof w.pidFile !== 'string' || w.pidFile === '') throw fail(charm.file, `${what} ("${w.name}").pidFile must be the path of the pid file the daemon writes`);
    const cmdline: unknown = w.cmdline;
    if (!Array.isArray(cmdline) || cmdline.length === 0 || !cmdline.every((c) => typeof c === 'string' && c !== '')) {
      throw fail(charm.file, `${what} ("${w.name}").cmdline must list at least one non-empty string its /proc/PID/cmdline contains (e.g. the program name and the unit's dir), so that a reused pid is never signalled`);
    }
    const dataDir: unknown = w.dataDir;
    if (dataDir !== undefined && !isWorkloadDataDir(dataDir)) {
      throw fail(charm.file, `${what} ("${w.name}").dataDir must be an absolute, normalized path at least three levels deep (e.g. /var/lib/app/<unit>): it is removed when the unit goes for good`);
    }
    return { name: w.name, pidFile: resolve(unit.dir, w.pidFile), cmdline: [...(cmdline as string[])], ...(dataDir !== undefined ? { dataDir } : {}) };
  });
}
