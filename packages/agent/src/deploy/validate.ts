/**
 * Everything `deploy` checks before it writes anything anywhere: every
 * machine the bundle uses (reachable over SSH, Node.js >= 20), then every
 * charm (compiled and type-checked), then the charms against the bundle's
 * relations. Each step names every problem it finds, not just the first,
 * so an operator fixes a bundle in one pass.
 */
import { AgentError, type AgentErrorCode } from '../errors';
import type { Bundle } from './bundle';
import { checkMachine } from './remote';

/** Compiles a charm folder (type-checked first; cached by content) and returns its module path. */
export async function prepareCharm(charmDir: string, opts: { charmCache?: string | undefined } = {}): Promise<string> {
  const { buildCharm } = await import('../charm/compile');
  return (await buildCharm(charmDir, opts.charmCache !== undefined ? { cacheDir: opts.charmCache } : {})).module;
}

export interface ValidateOptions {
  readonly charmCache?: string | undefined;
  readonly onPhase?: ((phase: string) => void) | undefined;
}

/** Checks the bundle's machines and charms; returns each service's compiled charm module. */
export async function validateBundle(bundle: Bundle, options: ValidateOptions = {}): Promise<Record<string, string>> {
  // Loaded here, not by every command that loads the deploy modules: bundle checking loads zod and the relations package.
  const { bundleError, checkBundle } = await import('./bundle');
  // Machines first: that fails in a second, compiling and type-checking charms takes longer.
  const usedMachines = new Set(Object.values(bundle.services).flatMap((s) => s.to ?? []));
  const remote = Object.values(bundle.machines).filter((m) => usedMachines.has(m.id) && m.local !== true);
  if (remote.length > 0) {
    options.onPhase?.(`checking ${remote.length} machine(s) over SSH`);
    const checks = await Promise.allSettled(remote.map((m) => checkMachine({ id: m.id, ssh: 'ssh' in m ? m.ssh : undefined, dir: 'dir' in m ? m.dir : undefined })));
    const failures = checks.flatMap((c) => (c.status === 'rejected' ? [c.reason as Error & { code?: AgentErrorCode }] : []));
    if (failures.length === 1) throw failures[0]!;
    if (failures.length > 1) throw bundleError(bundle.file, failures.map((e) => e.message), failures[0]!.code ?? 'AGENT_ERR_SSH');
  }
  const modules: Record<string, string> = {};
  const problems: string[] = [];
  let code: AgentErrorCode | undefined;
  for (const s of Object.values(bundle.services)) {
    try {
      modules[s.name] = await prepareCharm(s.charmDir, { charmCache: options.charmCache });
    } catch (err) {
      problems.push(`services.${s.name}.charm: ${(err as Error).message}`);
      code ??= (err as { code?: AgentErrorCode }).code;
    }
  }
  try {
    await checkBundle(bundle, modules, problems);
  } catch (err) {
    // The only problem is a charm that did not compile: its own code (a type error...) says more.
    if (problems.length === 1 && code !== undefined && (err as Error).message === `${bundle.file}: ${problems[0]}`) {
      throw new AgentError(code, (err as Error).message, { cause: err });
    }
    throw err;
  }
  return modules;
}
