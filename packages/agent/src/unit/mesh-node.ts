/**
 * Start-up step 5: this unit's gossip node. Reads the keyring, warms the
 * protocol code up if asked, listens (a local unit listens where it did
 * before, so the addresses peers remember stay true) and creates the node
 * with the agent's tuning and the tags that name its service and endpoints.
 * On failure whatever was opened here is closed again.
 */
import type { Clock } from '@rhizome/clock';
import type { CharmMetadata } from '@rhizome/relations';
import { createNode, createWsTransport, warmUp, type GossipNode, type GossipProfile, type Keyring, type WsTransport } from '@rhizome/gossip';
import type { AgentConfig } from '../config';
import { summarizingLogger, type SummarizingLogger } from '../internal/log-summary';
import type { NetworkPlan } from '../internal/network-plan';
import { gossipProfile } from '../internal/profiles';
import { readKeyringFile } from '../keys/keyring-file';
import type { Logger } from '../log/logger';
import type { MeshMemory } from '../mesh/rejoin';
import { agentTags } from '../mesh/tags';

export interface MeshNodeInput {
  readonly config: AgentConfig;
  readonly net: NetworkPlan;
  readonly clock: Clock;
  readonly metadata: CharmMetadata;
  /** Gossip tuning over the profile's (the agent's defaults, then the embedder's). */
  readonly tuning: Partial<GossipProfile>;
  readonly warmUp: boolean;
  /** How often refused frames and repeated gossip warnings are summarised (default: the summary's own). */
  readonly logSummaryIntervalMs: number | undefined;
  readonly log: Logger;
  /** What this unit remembered of the mesh (mesh.json), read before the network was planned. */
  readonly remembered: MeshMemory;
}

export interface MeshNode {
  readonly node: GossipNode;
  /** Gossip's log, summarising what strangers can provoke per frame; closed by the agent's stop. */
  readonly gossipLog: SummarizingLogger;
  readonly encrypted: boolean;
}

export async function startMeshNode(input: MeshNodeInput): Promise<MeshNode> {
  const { config: c, net, log } = input;
  let keyring: Keyring | undefined;
  if (c.keyringFile !== undefined) keyring = await readKeyringFile(c.keyringFile);
  if (input.warmUp) {
    // Only an optimization: an agent that cannot warm up (no loopback?) starts cold.
    await warmUp({ encrypted: keyring !== undefined }).then(
      (w) => log.debug({ ms: Math.round(w.ms), cpuMs: Math.round(w.cpuMs) }, 'gossip warmed up'),
      (err: unknown) => log.warn({ err }, 'gossip warm-up failed; starting cold'),
    );
  }
  const summaryEvery = input.logSummaryIntervalMs !== undefined ? { intervalMs: input.logSummaryIntervalMs } : {};
  // Refused frames: one summary line per peer per interval (the node counts them).
  const refusalEvery = input.logSummaryIntervalMs !== undefined ? { refusalReportInterval: input.logSummaryIntervalMs } : {};
  // Whatever a stranger can provoke per frame is logged at a bounded rate.
  const gossipLog = summarizingLogger(log.child({ component: 'gossip' }), summaryEvery);
  let transport: WsTransport | undefined;
  try {
    const { remembered } = input;
    const listen = (port: number) =>
      createWsTransport({
        host: net.bindHost,
        port,
        ...(net.advertiseAddress !== undefined ? { advertiseAddress: net.advertiseAddress } : {}),
        logger: gossipLog,
        ...refusalEvery,
      });
    transport =
      net.bindPort === 0 && remembered.port !== undefined
        ? await listen(remembered.port).catch((err: unknown) => {
            // Only a taken port is worth another try; anything else (no such address) fails the same on port 0.
            if ((err as { code?: unknown }).code !== 'EADDRINUSE') throw err;
            log.info({ port: remembered.port }, `gossip port ${remembered.port} (used before) is taken; listening on another`);
            return listen(0);
          })
        : await listen(net.bindPort);
    const node = createNode({
      name: c.unit,
      clock: input.clock,
      transport,
      profile: gossipProfile(net.profile),
      tuning: input.tuning,
      tags: agentTags(c.service, input.metadata, c.tags),
      seeds: c.seeds,
      ...(keyring ? { keyring } : {}),
      ...(c.label !== undefined ? { label: c.label } : {}),
      logger: gossipLog,
      ...refusalEvery,
    });
    return { node, gossipLog, encrypted: keyring !== undefined };
  } catch (err) {
    await transport?.close().catch(() => undefined);
    gossipLog.close();
    throw err;
  }
}
