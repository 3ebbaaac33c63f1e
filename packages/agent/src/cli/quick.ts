/**
 * The quick CLI: the commands of QUICK_COMMANDS (command-line.ts), on the
 * same program frame as the full CLI (program.ts). The build makes one
 * CommonJS file of this module and what it imports (dist/quick.cjs): a CLI
 * process starting from it skips Node's ES module loader and resolves one
 * file instead of a score of chunks, ~20 ms of CPU sooner. Each command's
 * module is imported when its command runs (in that file, a lazily
 * evaluated part), so `status` does not evaluate `members`' table library.
 * Nothing here may import another @rhizome package (types aside) or a
 * command that is not quick: the build would pull its graph into the file.
 */
import { commandOf } from './command-line';
import { createProgram, runProgram, type Register } from './program';

/** Quick command -> its register function; `version` is the frame's own. */
export const QUICK_MODULES: Readonly<Record<string, () => Promise<Register>>> = {
  status: async () => (await import('./commands/status')).registerStatus,
  members: async () => (await import('./commands/inspect')).registerInspect,
  facts: async () => (await import('./commands/inspect')).registerInspect,
  runs: async () => (await import('./commands/inspect')).registerInspect,
};

/** Runs a quick command line; the exit code. */
export async function runQuick(argv: readonly string[]): Promise<number> {
  const command = commandOf(argv);
  const load = command === undefined ? undefined : QUICK_MODULES[command];
  return runProgram(createProgram(load ? [await load()] : []), argv);
}
