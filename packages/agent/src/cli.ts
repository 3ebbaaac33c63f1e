/**
 * @rhizome/agent/cli: the `rhizome` command as a module, and how to launch
 * it or an agent as a process (the compiled JavaScript, `pnpm build`).
 */
export { main as runCli, buildProgram } from './cli/main';
export { agentCommand, rhizomeCommand, cliEntry, agentPackageRoot, agentVersion, CLI_BIN } from './runtime';
export type { CommandLine } from './runtime';
export { buildCharm, charmCacheDir, COMPILED_CHARM } from './charm/compile';
export type { BuildCharmOptions, CompiledCharm } from './charm/compile';
