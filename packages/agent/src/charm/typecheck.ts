/**
 * The type check a charm passes before any agent runs it (esbuild only
 * strips types, so without this a charm with a type error would load and
 * run). It is `tsc --noEmit` on the charm's `charm.ts`, in process through
 * the TypeScript API: the charm folder's tsconfig.json when it has one (its
 * project references and emit settings dropped: only the check matters),
 * else strict defaults. Loaded on demand: TypeScript is large, and only
 * deploy, add-unit and build-charm need it.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { CompilerOptions, Diagnostic, FormatDiagnosticsHost } from 'typescript';
import { AgentError } from '../errors';
import { CHARM_SOURCE, frameworkModules } from './framework';

/** Framework import names -> their declaration files (next to the compiled module: dist/src/index.d.ts). */
function frameworkTypes(): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, file] of Object.entries(frameworkModules())) {
    const dts = join(dirname(dirname(file)), 'dist', 'src', 'index.d.ts');
    if (existsSync(dts)) out[name] = [dts];
  }
  return out;
}

/** At most this much compiler output goes into the error (the first errors are the useful ones). */
const MAX_MESSAGE_CHARS = 6000;

/** Throws AGENT_ERR_CHARM_TYPE with the compiler's messages when `<charmDir>/charm.ts` does not type-check. */
export async function typecheckCharm(charmDir: string): Promise<void> {
  const ts = (await import('typescript')).default;
  const dir = resolve(charmDir);
  const source = join(dir, CHARM_SOURCE);
  const config = join(dir, 'tsconfig.json');
  let options: CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2023.d.ts'],
    strict: true,
    skipLibCheck: true,
    esModuleInterop: true,
    resolveJsonModule: true,
    isolatedModules: true,
    verbatimModuleSyntax: true,
  };
  if (existsSync(config)) {
    const problems: Diagnostic[] = [];
    const parsed = ts.getParsedCommandLineOfConfigFile(config, {}, {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => problems.push(d),
    });
    if (!parsed || problems.length > 0) {
      throw new AgentError('AGENT_ERR_CHARM_TYPE', `cannot read ${config}: ${problems.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')).join('; ')}`);
    }
    options = { ...parsed.options };
  }
  // Only the check: no output, no build info, no project references (their outputs may not exist).
  options.noEmit = true;
  // The framework as the agent will run it: its declaration files (with skipLibCheck, not
  // re-checked), never its sources (slow, and checked under the charm's settings, not its own).
  const paths = frameworkTypes();
  if (Object.keys(paths).length > 0) {
    options.paths = { ...(options.paths ?? {}), ...paths };
    options.skipLibCheck = true;
  }
  for (const k of ['composite', 'declaration', 'declarationMap', 'emitDeclarationOnly', 'incremental', 'tsBuildInfoFile', 'outDir', 'rootDir', 'sourceMap'] as const) delete options[k];
  const program = ts.createProgram({ rootNames: [source], options });
  const diagnostics = ts.getPreEmitDiagnostics(program);
  if (diagnostics.length === 0) return;
  const host: FormatDiagnosticsHost = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => dir, getNewLine: () => '\n' };
  let text = ts.formatDiagnostics(diagnostics, host).trim();
  if (text.length > MAX_MESSAGE_CHARS) text = `${text.slice(0, MAX_MESSAGE_CHARS)}\n... (${diagnostics.length} errors in all)`;
  throw new AgentError('AGENT_ERR_CHARM_TYPE', `charm ${source} does not type-check; fix it, then deploy again (tsc --noEmit):\n${text}`);
}
