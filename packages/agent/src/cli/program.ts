/**
 * The `rhizome` program's frame, shared by the full CLI (main.ts) and the
 * quick one (quick.ts): global options, help text, the `version` command,
 * and how a parse ends (exit codes: 0 ok, 1 a runtime error printed as
 * `error: <message>`, 2 bad usage with the usage line: commander's own
 * errors, argument parsers' and UsageError, see usage.ts).
 */
import { Command, CommanderError } from 'commander';
import { agentVersion } from '../runtime';
import { commandOf } from './command-line';
import type { GlobalOptions } from './target';
import { isUsageError } from './usage';

export type Register = (program: Command, globals: () => GlobalOptions) => void;

/** The program with the global options and help; `registers` add the commands, then `version`. */
export function createProgram(registers: readonly Register[]): Command {
  const program = new Command('rhizome');
  program
    .description('decentralized service orchestration: agents, charms, relations over a gossip mesh')
    .option('--home <dir>', 'where deployments live (default $RHIZOME_HOME or ./.rhizome)')
    .option('--deployment <name>', 'deployment to address (default: the last one)')
    .option('--data-dir <dir>', "an agent's data directory (agent: where to keep state; other commands: address that agent)")
    .option('--agent <url>', "an agent's control URL (with --token)")
    .option('--token <token>', 'control token for --agent')
    .option('--json', 'machine-readable output')
    .exitOverride()
    .addHelpText(
      'after',
      `
Which agent a command talks to: --agent URL --token T, else --data-dir DIR (or $RHIZOME_DATA_DIR),
else the deployment in --home (the last one, or --deployment NAME), else a live agent under the
home. One agent answers for its whole mesh: units on other hosts are reached through it.

Exit codes: 0 done, 1 runtime error ("error: ..."; with --json also as JSON on stdout, {"error": {code, message}}, beside what was done where the command says), 2 bad usage.
Every command: rhizome COMMAND --help. Reference: the agent package's README (CLI, control API).`,
    )
    .showHelpAfterError('usage: rhizome [options] <command> (rhizome --help lists the commands)')
    .configureOutput({ outputError: (str, write) => write(str) });
  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  for (const register of registers) register(program, globals);
  program
    .command('version')
    .description('print the version')
    .action(() => {
      process.stdout.write(`rhizome ${agentVersion()} (node ${process.version})\n`);
    });
  for (const c of program.commands) c.exitOverride().showHelpAfterError(`usage: rhizome ${c.name()} ${c.usage()} (rhizome ${c.name()} --help for details)`);
  return program;
}

/** `--json` or `--format json` anywhere on the command line. */
function wantsJson(argv: readonly string[]): boolean {
  return argv.some((a, i) => a === '--json' || a === '--format=json' || (a === '--format' && argv[i + 1] === 'json'));
}

/** Parses and runs `argv` on `program`; the exit code. */
export async function runProgram(program: Command, argv: readonly string[]): Promise<number> {
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    const e = err as { message?: string; code?: string; remoteCode?: string };
    process.stderr.write(`error: ${e.message ?? String(err)}\n`);
    const usage = isUsageError(err);
    if (usage) process.stderr.write(`${usageLine(program, argv)}\n`);
    // Scripts asked for JSON: they get the error as JSON too, on stdout.
    // An error that knows what the command did before it failed (UpgradeError's per-unit table) puts that beside it.
    if (wantsJson(argv)) {
      const done = (err as { jsonResult?: unknown }).jsonResult;
      const before = typeof done === 'object' && done !== null ? done : {};
      process.stdout.write(`${JSON.stringify({ ...before, error: { code: e.remoteCode ?? e.code ?? 'AGENT_ERR_INTERNAL', message: e.message ?? String(err) } })}\n`);
    }
    return usage ? 2 : 1;
  }
}

/** The usage line commander prints after its own errors, for the command of `argv`. */
function usageLine(program: Command, argv: readonly string[]): string {
  const name = commandOf(argv);
  const c = program.commands.find((x) => x.name() === name || x.aliases().includes(name ?? ''));
  return c ? `usage: rhizome ${c.name()} ${c.usage()} (rhizome ${c.name()} --help for details)` : 'usage: rhizome [options] <command> (rhizome --help lists the commands)';
}
