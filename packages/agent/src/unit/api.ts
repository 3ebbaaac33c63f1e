/**
 * What the control API (and the mesh's remote calls) see of a running
 * agent: the views it answers with and the calls it makes. The routes
 * depend on this interface, not on the Agent class, so the composition
 * root (agent.ts) may build the routes without an import cycle.
 */
import type { Json, RunReport } from '@rhizome/engine';
import type { GossipNode, Member } from '@rhizome/gossip';
import type { AgentInfo } from '../agent-info';
import type { ConfigOption } from '../charm/config-options';
import type { LogTail } from '../log/log-tail';
import type { RelationDirectory, RelationView } from '../mesh/relation-directory';
import type { RemoteControl } from '../mesh/remote-control';

export interface AgentStatus {
  readonly unit: string;
  readonly service: string;
  readonly charm: string;
  readonly pid: number;
  readonly controlUrl: string;
  readonly gossipAddress: string;
  /** The unit's advertised address (`unit.address`); optional: agents before it did not report it. */
  readonly address?: string;
  /** Gossip encryption: `insecure` is true when the agent runs unencrypted off loopback (`--insecure`). */
  readonly security?: { readonly encrypted: boolean; readonly insecure: boolean; readonly label?: string; readonly profile: string };
  readonly engine: { state: string; queued: number; runs: number; error?: { handler?: string; code: string; message: string; event: string; attempts: number } };
  readonly workload: { state: string; message: string } | undefined;
  readonly relations: readonly (RelationView & {
    links: readonly { remoteUnit: string; unacked: number; buffered: number; applied: number }[];
    problem?: string;
    /** This unit's side of the relation (from its charm's metadata), for `status`'s relation table. */
    role?: string;
    interface?: string;
  })[];
  readonly members: { alive: number; total: number };
  readonly uptimeMs: number;
  /** The agent's release (`rhizome version`; `rhizome upgrade-model` moves units onto another). Optional: older agents did not report it. */
  readonly version?: string;
  /**
   * Charm warnings, e.g. a precondition on a fact no run has ever set once
   * start-up settled (a misspelled name?). Optional: older agents have none.
   */
  readonly warnings?: readonly string[];
}

/** What `POST /query/stream` sends, one per line. */
export type QueryStreamEvent =
  | { type: 'ack'; from: string; ms: number }
  | { type: 'response'; from: string; payload: Json; ms: number }
  | { type: 'done'; acks: number; responses: number; members: number; ms: number; complete: boolean };

export interface LocalConvergence {
  readonly unit: string;
  /** The local conditions hold: engine idle and not in error, no unacked or buffered link message, every relation established. */
  readonly ok: boolean;
  readonly reasons: readonly string[];
  /** Names of alive (or suspect) members, this unit included. */
  readonly members: readonly string[];
  /** This unit's bag version per endpoint. */
  readonly published: Readonly<Record<string, { incarnation: number; version: number }>>;
  /** This unit's views of remote bags. */
  readonly views: readonly { relationId: string; endpoint: string; remoteService: string; remoteEndpoint: string; unit: string; incarnation: number; version: number }[];
  readonly relations: readonly { id: string; remoteService: string; established: boolean; units: readonly string[] }[];
  /** Relations declared (relate, not unrelated) as this unit's directory knows them. */
  readonly declarations: readonly { id: string; services: readonly [string, string] }[];
  /** Set while the engine is in `error` (retries exhausted; it waits for `resolve`): waiting any longer cannot help. */
  readonly error?: { readonly handler?: string; readonly code: string; readonly message: string; readonly event: string; readonly attempts: number };
}

export interface ConfigView {
  unit: string;
  service: string;
  charm: string;
  options: ConfigOption[];
}

export interface ConfigChange {
  unit: string;
  changed: string[];
  config: Record<string, Json>;
}

export interface ActionList {
  unit: string;
  charm: string;
  actions: { name: string; description: string }[];
}

export interface ActionOutcome {
  unit: string;
  action: string;
  ok: boolean;
  runId?: string;
  result?: Json;
  error?: string;
  /** Started in the background (`rhizome run --background`): no result here; the unit logs it under the run when it ends. */
  queued?: boolean;
  durationMs: number;
}

/** A running agent as the control API uses it (the Agent class implements it). */
export interface AgentApi {
  readonly unit: string;
  readonly logTail: LogTail;
  readonly node: GossipNode;
  readonly directory: RelationDirectory;
  readonly remote: RemoteControl;
  info(): AgentInfo;
  status(): AgentStatus;
  members(): Member[];
  facts(): Record<string, Json>;
  runs(): readonly RunReport[];
  converged(): LocalConvergence;
  resolve(skip: boolean): { state: string };
  sendEvent(name: string, payload: Json | undefined): { name: string; ltime: number; queuedTo: number };
  query(name: string, payload: Json | undefined, timeoutMs: number | undefined): Promise<{ acks: readonly string[]; responses: readonly { from: string; payload: unknown }[] }>;
  queryStream(name: string, payload: Json | undefined, timeoutMs: number | undefined): AsyncGenerator<QueryStreamEvent>;
  actions(): ActionList;
  runAction(name: string, set: Readonly<Record<string, string>>, background?: boolean): Promise<ActionOutcome>;
  configOptions(): ConfigView;
  reconfigure(set: Readonly<Record<string, string>>, dryRun: boolean): ConfigChange;
}
