/**
 * Compiling a charm for an agent started without its compiled module
 * (`rhizome agent --charm DIR`, no `--charm-module`): in a `rhizome
 * build-charm --no-typecheck` process of its own, never in the agent.
 *
 * Compiled in the agent, esbuild's JavaScript API left its service process
 * running beside the agent for as long as the agent ran (~40 MB resident),
 * and the build's own allocations stayed in the agent's heap (~10 MB): a
 * kv agent started by hand held ~115 MB where a deployed one holds ~60 MB.
 * The compile is cached by content hash (compile.ts) either way.
 */
import { execFile } from 'node:child_process';
import { AgentError } from '../errors';
import { rhizomeCommand } from '../runtime';

/** Longest a compile may take: esbuild takes well under a second, a cold start on a loaded machine a few. */
const COMPILE_TIMEOUT_MS = 120_000;

/** What `rhizome --json build-charm` prints. */
interface BuildCharmOutput {
  readonly module?: unknown;
  readonly error?: { readonly code?: unknown; readonly message?: unknown };
}

/** Compiles `charmDir`'s charm.ts (esbuild, cached, not type-checked) in a child process; resolves with the compiled module. */
export function compileCharmInChild(charmDir: string): Promise<string> {
  const cmd = rhizomeCommand(['--json', 'build-charm', charmDir, '--no-typecheck']);
  return new Promise((resolve, reject) => {
    execFile(cmd.command, [...cmd.args], { timeout: COMPILE_TIMEOUT_MS, maxBuffer: 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      let out: BuildCharmOutput | undefined;
      try {
        out = JSON.parse(stdout) as BuildCharmOutput;
      } catch {
        out = undefined;
      }
      if (!err && typeof out?.module === 'string') return resolve(out.module);
      const message = typeof out?.error?.message === 'string' ? out.error.message : `rhizome build-charm ${charmDir} failed (${err?.message ?? 'no module in its output'}): ${stderr.trim() || stdout.trim() || 'no output'}`;
      reject(new AgentError('AGENT_ERR_CHARM_LOAD', message, err ? { cause: err } : undefined));
    });
  });
}
