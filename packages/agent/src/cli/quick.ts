/**
 * The quick CLI: the commands of QUICK_COMMANDS (command-line.ts), on the
 * same program frame as the full CLI (program.ts), imported statically so
 * that the build makes one CommonJS file of them (dist/quick.cjs). A CLI
 * process starting from it skips Node's ES module loader and resolves one
 * file instead of a score of chunks: `rhizome status` is ~20 ms sooner.
 * Nothing here may import another @rhizome package or a command that is
 * not quick (the build would pull its whole graph into the file).
 */
import { registerStatus } from './commands/status';
import { createProgram, runProgram } from './program';

/** Runs a quick command line; the exit code. */
export function runQuick(argv: readonly string[]): Promise<number> {
  return runProgram(createProgram([registerStatus]), argv);
}
