/**
 * @rhizome/agent/testing: a charm loaded as the agent loads it (its
 * metadata, interfaces and handlers built for a unit), for tests that drive
 * handlers without starting an agent; and a running agent's control token.
 */
export { loadCharm, buildHandlers, CHARM_FILE } from './charm/load';
export type { LoadedCharm } from './charm/load';
export { readToken } from './control/token-file';
