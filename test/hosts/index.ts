/**
 * Network-namespace hosts for multi-host tests (see hosts.ts). Usage:
 *
 *   const reason = await netnsUnavailableReason();
 *   describe.skipIf(reason)(`... ${reason ?? ''}`, () => { ... });
 *   const net = await createHosts({ prefix: 'mh-a', addresses: ['10.231.1.1', '10.231.1.2'] });
 *   try { net.hosts[0].spawn('node', [...]); await net.partition([h1], [h2]); } finally { await net.cleanup(); }
 */
export { createHosts, canUseNetns, netnsUnavailableReason, HostNetwork } from './hosts.js';
export type { CreateHostsOptions, Host, HostProcess, SpawnOptions } from './hosts.js';
export { HostsError, runCommand, mustRun } from './run.js';
export type { CommandResult } from './run.js';
