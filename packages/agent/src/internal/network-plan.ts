/**
 * How an agent goes on the network, decided once at start from its config:
 * the bound and advertised addresses, the timing profile, and whether it may
 * run without a keyring. Secure by default: an agent that other machines can
 * reach (any bind but loopback) refuses to start without a keyring unless the
 * operator said `--insecure`.
 */
import { createServer } from 'node:net';
import type { AgentConfig } from '../config';
import { AgentError } from '../errors';
import { formatHostPort, isLoopback, resolveAdvertise } from './address';
import type { ProfileName } from './profiles';

export interface NetworkPlan {
  readonly bindHost: string;
  readonly bindPort: number;
  /** `host:port` to advertise, when it differs from what the transport would derive from the bind. */
  readonly advertiseAddress: string | undefined;
  /** The unit's address: `unit.address`, relation data, status. */
  readonly advertiseHost: string;
  readonly profile: ProfileName;
  /** A log line to write about the chosen address (wildcard binds). */
  readonly note?: string;
  /** Running unencrypted off loopback because the operator said so. */
  readonly insecure: boolean;
}

export function assertSecure(config: AgentConfig): void {
  if (config.keyringFile !== undefined || config.insecure || isLoopback(config.bindHost)) return;
  throw new AgentError(
    'AGENT_ERR_INSECURE',
    `agent ${config.unit} binds ${config.bindHost}, which other machines can reach, but has no keyring: anyone on the network could join the mesh and change relation data. ` +
      `Make one with 'rhizome keygen > keyring && chmod 600 keyring', give every agent of the cluster the same file with --keyring keyring (keyringFile in the config file), ` +
      `or pass --insecure to run unencrypted on purpose`,
  );
}

/**
 * Resolves the addresses; picks the port first when a fixed advertise address
 * needs it: the port this unit listened on before (`rememberedPort`, from
 * mesh.json) while it is free, so that a restarted unit is where its peers
 * and its seeds' memories say it is (a whole cluster restarted at once finds
 * itself again), else one the OS picks.
 */
export async function planNetwork(config: AgentConfig, rememberedPort?: number): Promise<NetworkPlan> {
  assertSecure(config);
  const r = resolveAdvertise(config.bindHost, config.advertise);
  let bindPort = config.bindPort;
  let advertiseAddress: string | undefined;
  if (config.advertise !== undefined || r.advertiseHost !== config.bindHost) {
    // The advertised address is fixed when the transport is created, so an
    // OS-picked port must be known before: pick it now on the bind host.
    if (bindPort === 0 && rememberedPort !== undefined) bindPort = await portIfFree(config.bindHost, rememberedPort);
    if (bindPort === 0) bindPort = await pickFreePort(config.bindHost);
    advertiseAddress = formatHostPort(r.advertiseHost, r.advertisePort ?? bindPort);
  }
  const insecure = config.keyringFile === undefined && !isLoopback(config.bindHost);
  return {
    bindHost: config.bindHost,
    bindPort,
    advertiseAddress,
    advertiseHost: r.advertiseHost,
    profile: config.profile,
    insecure,
    ...(r.chosen ? { note: `${r.chosen.reason}: ${r.advertiseHost} (interface ${r.chosen.iface}); pass --advertise to choose another` } : {}),
  };
}

/** `port` when it can be bound on `host` now, else 0 (taken, or refused for any other reason: the OS picks then). */
function portIfFree(host: string, port: number): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(0));
    s.listen(port, host, () => s.close(() => resolve(port)));
  });
}

function pickFreePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', (err) => reject(new AgentError('AGENT_ERR_BAD_CONFIG', `cannot bind ${host}: ${err.message}; check --bind`, { cause: err })));
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
