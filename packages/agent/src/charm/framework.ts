/**
 * Where the framework a charm imports is: the compiled modules of the copy
 * this CLI runs, by every name a charm may import them under. Shared by the
 * compiler (compile.ts) and the type-checker (typecheck.ts).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { AgentError } from '../errors';
import { agentPackageRoot } from '../runtime';

/** A charm folder's entry point. */
export const CHARM_SOURCE = 'charm.ts';

const FRAMEWORK = ['agent', 'engine', 'relations', 'gossip'] as const;

/**
 * Import specifier -> absolute file of the framework module this CLI runs.
 * Throws AGENT_ERR_NOT_BUILT when the compiled framework is missing.
 */
export function frameworkModules(): Record<string, string> {
  const root = agentPackageRoot();
  const req = createRequire(join(root, 'package.json'));
  const out: Record<string, string> = {};
  for (const name of FRAMEWORK) {
    const file = name === 'agent' ? join(root, 'dist', 'index.js') : req.resolve(`@rhizome/${name}`);
    if (!existsSync(file) || !file.endsWith('.js')) {
      throw new AgentError('AGENT_ERR_NOT_BUILT', `the compiled framework module ${file} (@rhizome/${name}) is missing; run 'pnpm build' in the repository`);
    }
    out[`@rhizome/${name}`] = file;
    out[name === 'agent' ? 'rhizome' : `rhizome/${name}`] = file;
  }
  return out;
}
