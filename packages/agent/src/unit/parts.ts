/**
 * The booted parts of one agent, in one object: what the composition root
 * (agent.ts) builds in order, and what the views and calls read. Start-up
 * fills a Partial of it step by step (so a failed start stops exactly what
 * was started); once every step succeeded the agent holds the whole.
 */
import type { Engine } from '@rhizome/engine';
import type { GossipNode } from '@rhizome/gossip';
import type { RelationManager } from '@rhizome/relations';
import type { AgentConfig } from '../config';
import type { ControlServer } from '../control/server';
import type { NetworkPlan } from '../internal/network-plan';
import type { MeshLinkTransport } from '../mesh/link-transport';
import type { Rejoiner } from '../mesh/rejoin';
import type { RelationDirectory } from '../mesh/relation-directory';
import type { RemoteControl } from '../mesh/remote-control';
import type { DurableState } from '../state/durable-state';
import type { FileWatcher } from '../watch/watch-files';
import type { CharmRuntime } from './charm-runtime';

export interface AgentParts {
  readonly config: AgentConfig;
  /** The charm's own directory (`<dataDir>/unit`). */
  readonly unitDir: string;
  /** Wall-clock ms at start (uptime, agent.json). */
  readonly startedAt: number;
  /** Where this unit is on the network (bind, advertise, profile). */
  readonly net: NetworkPlan;
  /** Gossip runs with a keyring. */
  readonly encrypted: boolean;
  readonly state: DurableState;
  readonly charm: CharmRuntime;
  readonly engine: Engine;
  readonly control: ControlServer;
  readonly node: GossipNode;
  /** Other units' agents, over the mesh. */
  readonly remote: RemoteControl;
  readonly transport: MeshLinkTransport;
  readonly manager: RelationManager;
  readonly directory: RelationDirectory;
  readonly rejoiner: Rejoiner;
  /** Only when the charm watches files. */
  readonly watcher: FileWatcher | undefined;
}
