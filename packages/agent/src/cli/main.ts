/**
 * `rhizome`: the operator's CLI (Serf's and Juju's verbs). Exit codes: 0 ok,
 * 1 a runtime error (agent unreachable, unknown unit, ...) printed as
 * `error: <message>`, 2 bad arguments (with the usage).
 */
import type { Command } from 'commander';
import { commandOf } from './command-line';
import { createProgram, runProgram, type Register } from './program';
import { agentVersion } from '../runtime';

export { agentVersion };

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
  'upgrade-charm': 'deploy',
  'upgrade-model': 'deploy',
  'add-machine': 'machines',
  machines: 'machines',
  'remove-machine': 'machines',
  keygen: 'keys',
  keys: 'keys',
  'build-charm': 'charm',
  init: 'charm',
  dashboard: 'dashboard',
};

/**
 * The CLI's commander program. With `argv`, only the module of the command
 * it names is loaded (all of them for help, an unknown command or none).
 */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
  const command = argv === undefined ? undefined : commandOf(argv);
  const only = command === 'version' ? [] : command !== undefined && COMMAND_MODULE[command] !== undefined ? [COMMAND_MODULE[command]] : Object.keys(MODULES);
  return createProgram(await Promise.all(only.map((m) => MODULES[m]!())));
}

export async function main(argv: readonly string[]): Promise<number> {
  let program: Command;
  try {
    program = await buildProgram(argv);
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  }
  return runProgram(program, argv);
}
