/**
 * `rhizome`: the operator's CLI (Serf's and Juju's verbs). Exit codes: 0 ok,
 * 1 a runtime error (agent unreachable, unknown unit, ...) printed as
 * `error: <message>`, 2 bad arguments (with the usage).
 */
import { Command, CommanderError } from 'commander';
import { registerActions } from './commands/actions';
import { registerAgent } from './commands/agent';
import { registerCharm } from './commands/charm';
import { registerConfig } from './commands/config';
import { registerDeploy } from './commands/deploy';
import { registerMachines } from './commands/machines';
import { registerInspect } from './commands/inspect';
import { registerKeys } from './commands/keys';
import { registerLogs } from './commands/logs';
import { registerOperate } from './commands/operate';
import { registerStatus } from './commands/status';
import type { GlobalOptions } from './target';
import { agentVersion } from '../runtime';

export { agentVersion };

export function buildProgram(): Command {
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
    .showHelpAfterError('usage: rhizome [options] <command> (rhizome --help lists the commands)')
    .configureOutput({ outputError: (str, write) => write(str) });
  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  registerAgent(program, globals);
  registerStatus(program, globals);
  registerInspect(program, globals);
  registerOperate(program, globals);
  registerLogs(program, globals);
  registerConfig(program, globals);
  registerActions(program, globals);
  registerDeploy(program, globals);
  registerMachines(program, globals);
  registerKeys(program, globals);
  registerCharm(program, globals);
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

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
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
    // Scripts asked for JSON: they get the error as JSON too, on stdout.
    if (wantsJson(argv)) process.stdout.write(`${JSON.stringify({ error: { code: e.remoteCode ?? e.code ?? 'AGENT_ERR_INTERNAL', message: e.message ?? String(err) } })}\n`);
    return 1;
  }
}
