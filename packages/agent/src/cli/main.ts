/**
 * `rhizome`: the operator's CLI (Serf's and Juju's verbs). Exit codes: 0 ok,
 * 1 a runtime error (agent unreachable, unknown unit, ...) printed as
 * `error: <message>`, 2 bad arguments (with the usage).
 */
import { Command, CommanderError } from 'commander';
import type { GlobalOptions } from './target';
import { agentVersion } from '../runtime';

export { agentVersion };

type Register = (program: Command, globals: () => GlobalOptions) => void;

/**
 * The command modules, loaded on demand: a command loads its own module and
 * what that imports, nothing else (`rhizome status` never loads deploy's,
 * the agent's or the charm compiler's dependencies). Listed in help order.
 */
const MODULES: Record<string, () => Promise<Register>> = {
  agent: async () => (await import('./commands/agent')).registerAgent,
  status: async () => (await import('./commands/status')).registerStatus,
  inspect: async () => (await import('./commands/inspect')).registerInspect,
  operate: async () => (await import('./commands/operate')).registerOperate,
  logs: async () => (await import('./commands/logs')).registerLogs,
  config: async () => (await import('./commands/config')).registerConfig,
  actions: async () => (await import('./commands/actions')).registerActions,
  deploy: async () => (await import('./commands/deploy')).registerDeploy,
  machines: async () => (await import('./commands/machines')).registerMachines,
  keys: async () => (await import('./commands/keys')).registerKeys,
  charm: async () => (await import('./commands/charm')).registerCharm,
  dashboard: async () => (await import('./commands/dashboard')).registerDashboard,
};

/**
 * Top-level command -> the module that registers it. A command missing here
 * still works (every module is loaded for it), only slower: keep in step.
 */
const COMMAND_MODULE: Readonly<Record<string, string>> = {
  agent: 'agent',
  status: 'status',
  members: 'inspect',
  facts: 'inspect',
  runs: 'inspect',
  event: 'operate',
  query: 'operate',
  resolve: 'operate',
  logs: 'logs',
  config: 'config',
  run: 'actions',
  actions: 'actions',
  deploy: 'deploy',
  'add-unit': 'deploy',
  kill: 'deploy',
  stop: 'deploy',
  'remove-unit': 'deploy',
  start: 'deploy',
  wait: 'deploy',
  destroy: 'deploy',
  scale: 'deploy',
  'add-machine': 'machines',
  machines: 'machines',
  'remove-machine': 'machines',
  keygen: 'keys',
  keys: 'keys',
  'build-charm': 'charm',
  init: 'charm',
  dashboard: 'dashboard',
};

/** Global options that take a value (their value is not the command). */
const GLOBAL_WITH_VALUE = new Set(['--home', '--deployment', '--data-dir', '--agent', '--token']);

/** The command word of a command line (the first argument that is neither an option nor a global option's value). */
export function commandOf(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (GLOBAL_WITH_VALUE.has(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/**
 * The CLI's commander program. With `argv`, only the module of the command
 * it names is loaded (all of them for help, an unknown command or none).
 */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
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

Exit codes: 0 done, 1 runtime error ("error: ..."; with --json also as JSON on stdout), 2 bad usage.
Every command: rhizome COMMAND --help. Reference: the agent package's README (CLI, control API).`,
    )
    .showHelpAfterError('usage: rhizome [options] <command> (rhizome --help lists the commands)')
    .configureOutput({ outputError: (str, write) => write(str) });
  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  const command = argv === undefined ? undefined : commandOf(argv);
  const only = command === 'version' ? [] : command !== undefined && COMMAND_MODULE[command] !== undefined ? [COMMAND_MODULE[command]] : Object.keys(MODULES);
  const registers = await Promise.all(only.map((m) => MODULES[m]!()));
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

export async function main(argv: readonly string[]): Promise<number> {
  let program: Command;
  try {
    program = await buildProgram(argv);
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  }
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
