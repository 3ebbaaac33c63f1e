/**
 * The agent: one unit's engine, relations, gossip node, durable state,
 * control API, file watches and logs, composed. Several agents may run in
 * one process (tests, simulation): nothing here is global.
 *
 * Start-up, in order (each step can fail with a clear AgentError, and what
 * was started is stopped again):
 *   1. lock the data directory and recover the state (snapshot + log);
 *   2. load the charm (`<charmDir>/charm.ts`) and build its handlers;
 *   3. the engine, on the recovered knowledge base, committing durably;
 *   4. the control API (loopback only; never advertised);
 *   5. the gossip node (WebSocket on the bind address, advertising the
 *      unit's address; the config's timing profile; name = unit; tags carry
 *      the service and the charm's endpoints) and the join;
 *   6. the relation manager (links over the mesh, durable link store) and the
 *      relation directory (declarations, joined/departed from membership);
 *   7. `engine.start()`, then file watches (`file.changed` with `{ path }`).
 *
 * Stop (SIGTERM): watches closed, the current run finished (`engine.stop()`
 * lets it commit or roll back), links stopped, the charm's `stop`, a
 * graceful leave, the transport and control API closed, the state flushed
 * and unlocked.
 */
import { AGENT_INFO_FILE, writeJsonAtomic, type AgentInfo } from './agent-info';
import { join } from 'node:path';
import { Engine, factsOf, getFact, internalEvent, jsonEqual, type HandlerContext, type HandlerSpec, type Json, type RetryOptions, type RunReport } from '@rhizome/engine';
import { createNode, createWsTransport, warmUp, type Keyring, type GossipNode, type GossipProfile, type Member } from '@rhizome/gossip';
import { asEndpointState, relationsModel, RelationManager, type RetransmitOptions } from '@rhizome/relations';
import { actionEvent, actionHandlers, describeActions, readActionParams } from './charm/actions';
import { describeConfig, planConfigChange, type ConfigOption } from './charm/config-options';
import { buildHandlers, declaredWorkloads, loadCharm, watchedFiles, type LoadedCharm } from './charm/load';
import { writeWorkloadManifest } from './deploy/workloads';
import type { CharmLogger, UnitContext } from './charm/define';
import { parseAgentConfig, type AgentConfig } from './config';
import { buildControlRoutes } from './control/routes';
import { createControlServer, type ControlServer } from './control/server';
import { writeControlEndpoint } from './control/endpoint';
import { loadOrCreateToken } from './control/token';
import { AgentError, toAgentError } from './errors';
import { planNetwork, type NetworkPlan } from './internal/network-plan';
import { readKeyringFile, writeKeyringFile } from './keys/keyring-file';
import { readMeshMemory, Rejoiner } from './mesh/rejoin';
import { RemoteControl } from './mesh/remote-control';
import { gossipProfile } from './internal/profiles';
import { LogTail } from './log/log-tail';
import { withStepLog } from './executors/step-log';
import { createLogger, runLogger, type Logger } from './log/logger';
import { openLogFile, type LogFile, type LogFileOptions } from './log/log-file';
import { ensurePrivateDir, tightenFile } from './internal/private-fs';
import { summarizingLogger, type SummarizingLogger } from './internal/log-summary';
import { MeshLinkTransport } from './mesh/link-transport';
import { RelationDirectory, type RelationView } from './mesh/relation-directory';
import { agentTags, serviceOf } from './mesh/tags';
import { DurableState } from './state/durable-state';
import { watchFiles, type FileWatcher } from './watch/watch-files';

export { AGENT_INFO_FILE, writeJsonAtomic } from './agent-info';
export type { AgentInfo } from './agent-info';

export interface AgentOptions {
  /** fsync the state (default true; false only in tests that do not crash). */
  readonly fsync?: boolean;
  /** Gossip timing overrides on top of the config's profile (local, lan or wan). */
  readonly gossip?: Partial<GossipProfile>;
  /**
   * Warm the gossip code paths up at start, before joining (default true):
   * about 100 ms of CPU once, so that the first join runs warm JIT code
   * (see @rhizome/gossip warmUp; matters when many agents join at once).
   */
  readonly gossipWarmUp?: boolean;
  readonly retry?: Partial<RetryOptions>;
  readonly retransmit?: Partial<RetransmitOptions>;
  /** How long after start a unit absent from the mesh is not yet departed (default 10 s). */
  readonly absentGraceMs?: number;
  /** Debounce of file watches. */
  readonly watchDebounceMs?: number;
  /** How long a burst of relation events may gather before its run (see EngineOptions.burst). */
  readonly relationBurst?: { readonly quietMs: number; readonly maxMs: number };
  /** How long `stop()` waits for the current run before abandoning it (default 30 s). */
  readonly stopTimeoutMs?: number;
  /** agent.log rotation (default 10 MiB per file, 3 files). */
  readonly logFile?: LogFileOptions;
  /** How often refused frames and other repeated gossip warnings are summarised, one line per peer and kind (default 10 s). */
  readonly logSummaryIntervalMs?: number;
}

/**
 * Relation events gather until none came for 200 ms, at most 1.5 s: units of
 * a related service send their data within a few hundred ms of each other,
 * and one playbook run (seconds) for the burst beats one per unit.
 */
export const DEFAULT_RELATION_BURST = Object.freeze({ quietMs: 200, maxMs: 1_500 });

export const DEFAULT_AGENT_GOSSIP_TUNING: Partial<GossipProfile> = Object.freeze({
  // Relation declarations (~200 B) and `rhizome event` payloads travel as user events.
  userEventSizeLimit: 2048,
  // The directory query answers with every declaration of the deployment.
  queryResponseSizeLimit: 32 * 1024,
  querySizeLimit: 2048,
});

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

export class Agent {
  readonly config: AgentConfig;
  readonly unitDir: string;
  readonly logTail = new LogTail();
  readonly log: Logger;
  private readonly logFile: LogFile;
  private gossipLog: SummarizingLogger | undefined;
  private charm!: LoadedCharm;
  private unitCtx!: UnitContext;
  /** The charm's handlers built for the current config, by name (the engine calls them through wrapHandler). */
  private readonly liveHandlers = new Map<string, HandlerSpec>();
  /** Action results by run id, from the action's handler until runAction picks them up. */
  private readonly actionResults = new Map<string, Json>();
  private state!: DurableState;
  private engine_!: Engine;
  private node_!: GossipNode;
  private manager!: RelationManager;
  private directory_!: RelationDirectory;
  private transport!: MeshLinkTransport;
  private control!: ControlServer;
  private net!: NetworkPlan;
  private remote_!: RemoteControl;
  /** Keyring file writes, one after another (key operations may arrive back to back). */
  private keyringWrites: Promise<void> = Promise.resolve();
  private encrypted = false;
  private watcher: FileWatcher | undefined;
  private currentRunLog: Logger | undefined;
  private readonly startedAt = Date.now();
  private readonly offs: Array<() => void> = [];
  private rejoiner: Rejoiner | undefined;
  private stopping: Promise<void> | undefined;
  private readonly options: AgentOptions;
  private markDone!: () => void;
  /** Resolves once the agent has stopped (by `stop()`, or by itself after its state failed). */
  readonly done: Promise<void> = new Promise((resolve) => {
    this.markDone = resolve;
  });
  /** Why the agent stopped by itself, if it did. */
  failure: unknown;

  private constructor(config: AgentConfig, options: AgentOptions, logFile: LogFile) {
    this.config = config;
    this.options = options;
    this.unitDir = join(config.dataDir, 'unit');
    this.logFile = logFile;
    this.log = createLogger({ unit: config.unit, level: config.logLevel, destination: logFile.stream, tail: this.logTail });
  }

  /** Starts an agent; see the file header for the steps. */
  static async start(config: AgentConfig | unknown, options: AgentOptions = {}): Promise<Agent> {
    const c = isAgentConfig(config) ? config : parseAgentConfig(config);
    // Only the agent's user may read what a unit keeps (0700 / 0600), also in a data dir made earlier.
    await ensurePrivateDir(c.dataDir);
    await ensurePrivateDir(join(c.dataDir, 'unit'));
    for (const f of ['agent.out', 'agent.yaml']) await tightenFile(join(c.dataDir, f));
    const logFile = await openLogFile(join(c.dataDir, 'agent.log'), options.logFile);
    const agent = new Agent(c, options, logFile);
    try {
      await agent.boot();
    } catch (err) {
      agent.log.error({ err }, 'start-up failed');
      await agent.teardown().catch(() => undefined);
      throw err;
    }
    return agent;
  }

  get unit(): string {
    return this.config.unit;
  }
  get service(): string {
    return this.config.service;
  }
  get engine(): Engine {
    return this.engine_;
  }
  get node(): GossipNode {
    return this.node_;
  }
  get directory(): RelationDirectory {
    return this.directory_;
  }
  get controlUrl(): string {
    return this.control.url;
  }
  /** Other units' agents, over the mesh (status, facts, runs, logs, resolve). */
  get remote(): RemoteControl {
    return this.remote_;
  }
  get gossipAddress(): string {
    return this.node_.address;
  }
  get stopped(): boolean {
    return this.stopping !== undefined;
  }

  private async boot(): Promise<void> {
    const c = this.config;
    // 0. where this unit is on the network (refuses to start exposed without a keyring)
    this.net = await planNetwork(c);
    if (this.net.note) this.log.info({ advertise: this.net.advertiseHost }, this.net.note);
    if (this.net.insecure) {
      this.log.warn({ bind: c.bindHost }, `INSECURE: gossip is unencrypted on ${c.bindHost} (--insecure): anyone who reaches this port can join the mesh and change relation data`);
    }
    // 1. state
    this.state = await DurableState.open({
      dir: join(c.dataDir, 'state'),
      fsync: this.options.fsync ?? true,
      snapshotEvery: c.snapshotEvery,
      onFailure: (err) => {
        this.log.fatal({ err }, 'the durable state failed; stopping the agent');
        this.failure = err;
        void this.stop();
      },
    });
    const rec = this.state.recovery;
    this.log.info({ generation: rec.generation, recordsReplayed: rec.recordsReplayed, tornBytesDropped: rec.tornBytesDropped }, 'state recovered');

    // 2. charm
    this.charm = await loadCharm(c.charmDir, c.charmModule);
    // Options an operator changed at run time (`rhizome config`) are kept in the state and win over the file's.
    const overrides = getFact(this.state.recoveredKb, CONFIG_OVERRIDES_FACT);
    const config: Record<string, Json> = { ...(this.charm.definition.config ?? {}), ...c.options, ...(isJsonObject(overrides) ? overrides : {}) };
    this.unitCtx = Object.freeze({ unit: c.unit, service: c.service, dir: this.unitDir, address: this.net.advertiseHost, config: Object.freeze(config), log: this.charmLogger() });
    const built = buildHandlers(this.charm, this.unitCtx);
    for (const h of built) this.liveHandlers.set(h.name, h);
    const handlers = [...built, ...actionHandlers(this.charm.definition, () => this.unitCtx, this.actionResults)].map((h) => this.wrapHandler(h));
    // Also when started without the CLI (a supervisor): `rhizome destroy` finds the daemons to stop there.
    await writeWorkloadManifest(c.dataDir, c.unit, declaredWorkloads(this.charm, this.unitCtx));

    // 3. engine
    this.engine_ = new Engine({
      handlers,
      ...(this.charm.definition.facts !== undefined ? { facts: this.charm.definition.facts } : {}),
      relationModel: relationsModel,
      initial: this.state.recoveredKb,
      onCommit: (commit) => this.state.commitRun(commit),
      // Group commit: the log appends commits in order and fsyncs them in batches, so later runs need not wait
      // for an earlier run's fsync; acks, link messages and status still wait until a commit is durable.
      maxCommitsInFlight: 256,
      onError: (err) => this.log.error({ err }, 'engine listener failed'),
      runIdPrefix: c.unit,
      // A burst of relation changes (units joining, a relate) gathers for a moment and converges in one run.
      burst: this.options.relationBurst ?? DEFAULT_RELATION_BURST,
      ...(this.options.retry ? { retry: this.options.retry } : {}),
    });
    this.offs.push(this.engine_.onReport((r) => this.logReport(r)));

    // 4. control API
    const token = await loadOrCreateToken(c.dataDir);
    this.control = await createControlServer({
      port: c.controlPort,
      token,
      routes: buildControlRoutes(this),
      errorStatus: (err) => {
        const code = (err as { code?: unknown } | null)?.code;
        if (typeof code !== 'string') return undefined;
        if (code === 'ENGINE_ERR_STATE') return 409;
        if (code.startsWith('REL_ERR_')) return 400;
        // The operator's payload is beyond the wire's limits (the message names the limit).
        if (code === 'GOSSIP_ERR_EVENT_TOO_LARGE' || code === 'GOSSIP_ERR_QUERY_TOO_LARGE' || code === 'GOSSIP_ERR_PAYLOAD_TOO_DEEP') return 400;
        return undefined;
      },
    });

    // 5. gossip
    let keyring: Keyring | undefined;
    if (c.keyringFile !== undefined) keyring = await readKeyringFile(c.keyringFile);
    if (this.options.gossipWarmUp ?? true) {
      // Only an optimization: an agent that cannot warm up (no loopback?) starts cold.
      await warmUp({ encrypted: keyring !== undefined }).then(
        (w) => this.log.debug({ ms: Math.round(w.ms), cpuMs: Math.round(w.cpuMs) }, 'gossip warmed up'),
        (err: unknown) => this.log.warn({ err }, 'gossip warm-up failed; starting cold'),
      );
    }
    this.encrypted = keyring !== undefined;
    // Whatever a stranger can provoke per frame is logged at a bounded rate.
    this.gossipLog = summarizingLogger(this.log.child({ component: 'gossip' }), {
      ...(this.options.logSummaryIntervalMs !== undefined ? { intervalMs: this.options.logSummaryIntervalMs } : {}),
    });
    const remembered = await readMeshMemory(c.dataDir);
    const gossipLog = this.gossipLog;
    const listen = (port: number) =>
      createWsTransport({
        host: this.net.bindHost,
        port,
        ...(this.net.advertiseAddress !== undefined ? { advertiseAddress: this.net.advertiseAddress } : {}),
        logger: gossipLog,
        // Refused frames: one summary line per peer per interval (the node counts them).
        ...(this.options.logSummaryIntervalMs !== undefined ? { refusalReportInterval: this.options.logSummaryIntervalMs } : {}),
      });
    // Port 0 (a local unit): listen where this unit listened before, so the addresses peers remember stay true.
    const transport =
      this.net.bindPort === 0 && remembered.port !== undefined
        ? await listen(remembered.port).catch((err: unknown) => {
            this.log.info({ err, port: remembered.port }, `gossip port ${remembered.port} (used before) is taken; listening on another`);
            return listen(0);
          })
        : await listen(this.net.bindPort);
    this.node_ = createNode({
      name: c.unit,
      transport,
      profile: gossipProfile(this.net.profile),
      tuning: { ...DEFAULT_AGENT_GOSSIP_TUNING, ...this.options.gossip },
      tags: agentTags(c.service, this.charm.metadata, c.tags),
      seeds: c.seeds,
      ...(keyring ? { keyring } : {}),
      ...(c.label !== undefined ? { label: c.label } : {}),
      logger: this.gossipLog,
      // Refused frames: one summary line per peer per interval (the node counts them).
      ...(this.options.logSummaryIntervalMs !== undefined ? { refusalReportInterval: this.options.logSummaryIntervalMs } : {}),
    });
    // `rhizome keys` changed this member's keyring: persist it, so a restart keeps the keys the cluster uses.
    const keyringFile = c.keyringFile;
    if (keyringFile !== undefined) {
      this.offs.push(
        this.node_.on('keyring-change', (change) => {
          this.keyringWrites = this.keyringWrites
            .then(() => writeKeyringFile(keyringFile, change.keys))
            .then(
              () => this.log.info({ operation: change.operation, keys: change.keys.length, file: keyringFile }, `keyring ${change.operation}: ${keyringFile} rewritten`),
              (err: unknown) => this.log.error({ err, file: keyringFile }, `keyring ${change.operation} applied in memory but ${keyringFile} could not be written; a restart would lose it`),
            );
        }),
      );
    }
    this.remote_ = new RemoteControl(
      this.node_,
      {
        unit: c.unit,
        status: () => this.status(),
        info: () => this.info(),
        facts: () => this.facts(),
        runs: () => this.runs(),
        logs: ({ since, ...filter }) => {
          const records = this.logTail.recent(filter);
          return since === undefined ? records : records.filter((r) => r.time >= since);
        },
        resolve: (skip) => this.resolve(skip),
        config: () => this.configOptions(),
        configure: (set, dryRun) => this.reconfigure(set, dryRun),
        actions: () => this.actions(),
        action: (name, params) => this.runAction(name, params),
      },
      c.label,
    );
    this.offs.push(() => this.remote_.close());

    // 6. relations
    this.transport = new MeshLinkTransport(this.node_);
    this.manager = new RelationManager({
      unit: c.unit,
      metadata: this.charm.metadata,
      interfaces: this.charm.interfaces,
      engine: this.engine_,
      transport: this.transport,
      store: this.state.linkStore,
      ...(this.options.retransmit ? { retransmit: this.options.retransmit } : {}),
      onError: (err) => this.log.warn({ err }, 'relation link error'),
    });
    this.directory_ = new RelationDirectory({
      unit: c.unit,
      service: c.service,
      metadata: this.charm.metadata,
      node: this.node_,
      state: this.state,
      manager: this.manager,
      engine: this.engine_,
      log: this.log.child({ component: 'relations' }),
      ...(this.options.absentGraceMs !== undefined ? { absentGraceMs: this.options.absentGraceMs } : {}),
    });
    this.offs.push(
      this.node_.on('user-event', (e) => {
        if (e.name.startsWith('rz.')) return;
        let payload: Json | undefined;
        try {
          payload = e.payload === undefined || e.payload === null ? undefined : (JSON.parse(JSON.stringify(e.payload)) as Json);
        } catch {
          payload = undefined;
        }
        this.engine_.submit(internalEvent(`user.${e.name}`, payload)).catch((err: unknown) => this.log.debug({ err, event: e.name }, 'user event run did not commit'));
      }),
      this.node_.onQuery('*', (q) => (q.name.startsWith('rz.') ? undefined : { unit: c.unit, service: c.service, state: this.engine_.status().state, workload: this.workload() ?? null })),
    );
    for (const ev of ['member-join', 'member-failed', 'member-leave'] as const) {
      this.offs.push(this.node_.on(ev, (m: Member) => this.log.info({ member: m.name, status: m.status }, `mesh: ${ev.slice(7)} ${m.name}`)));
    }
    this.manager.start();
    this.directory_.start();

    // 7. go
    this.engine_.start().catch((err: unknown) => this.log.warn({ err }, 'start run did not commit'));
    // Juju's config-changed: the charm config (defaults + options) is the fact
    // `config`; when it differs from the one committed (first start, or the
    // operator changed an option), `config.changed` runs with the new config.
    const charmConfig = this.unitCtx.config as Json;
    if (!jsonEqual(getFact(this.engine_.knowledge, 'config'), charmConfig)) {
      this.engine_
        .submit(internalEvent('config.changed', charmConfig), { apply: (tx) => tx.set('config', charmConfig) })
        .catch((err: unknown) => this.log.warn({ err }, 'config.changed run did not commit'));
    }
    this.rejoiner = new Rejoiner({
      node: this.node_,
      dataDir: c.dataDir,
      seeds: c.seeds,
      remembered,
      log: this.log,
      onJoined: () => void this.directory_.syncFromPeers(),
    });
    await this.rejoiner.start();
    const files = watchedFiles(this.charm, this.unitCtx);
    if (files.length > 0) {
      this.watcher = await watchFiles({
        paths: files,
        ...(this.options.watchDebounceMs !== undefined ? { debounceMs: this.options.watchDebounceMs } : {}),
        onChange: (paths) => {
          for (const path of paths) {
            this.engine_.submit(internalEvent('file.changed', { path })).catch((err: unknown) => this.log.debug({ err, path }, 'file.changed run did not commit'));
          }
        },
        onError: (err) => this.log.warn({ err }, 'file watch error'),
      });
    }
    await writeControlEndpoint(c.dataDir, { url: this.control.url, pid: process.pid });
    await writeJsonAtomic(join(c.dataDir, AGENT_INFO_FILE), this.info());
    this.log.info({ control: this.control.url, gossip: this.node_.address, charm: this.charm.file }, 'agent started');
  }

  info(): AgentInfo {
    return {
      unit: this.unit,
      service: this.service,
      pid: process.pid,
      controlUrl: this.control.url,
      gossipAddress: this.node_.address,
      dataDir: this.config.dataDir,
      unitDir: this.unitDir,
      startedAt: this.startedAt,
    };
  }

  // ---- views for the control API ------------------------------------------

  workload(): { state: string; message: string } | undefined {
    const w = getFact(this.engine_.knowledge, 'workload.status') as { state?: unknown; message?: unknown } | undefined;
    if (!w || typeof w !== 'object') return undefined;
    return { state: String(w.state ?? ''), message: String(w.message ?? '') };
  }

  status(): AgentStatus {
    const es = this.engine_.status();
    const links = this.manager.linkStatus();
    const members = this.node_.members();
    return {
      unit: this.unit,
      service: this.service,
      charm: this.charm.metadata.name,
      pid: process.pid,
      controlUrl: this.control.url,
      gossipAddress: this.node_.address,
      address: this.net.advertiseHost,
      security: { encrypted: this.encrypted, insecure: this.net.insecure, profile: this.net.profile, ...(this.config.label !== undefined ? { label: this.config.label } : {}) },
      engine: { state: es.state, queued: es.queued, runs: es.runs, ...(es.error ? { error: es.error } : {}) },
      workload: this.workload(),
      relations: this.directory_.views().map((v) => {
        const problem = this.directory_.problems.get(v.id);
        const ep = this.charm.metadata.endpoints[v.endpoint];
        return {
          ...v,
          ...(ep ? { role: ep.role, interface: ep.interface } : {}),
          links: links.filter((l) => l.relationId === v.id).map((l) => ({ remoteUnit: l.remoteUnit, unacked: l.unacked, buffered: l.buffered, applied: l.applied })),
          ...(problem !== undefined ? { problem } : {}),
        };
      }),
      members: { alive: members.filter((m) => m.status === 'alive').length, total: members.length },
      uptimeMs: Date.now() - this.startedAt,
      ...this.charmWarnings(),
    };
  }

  // ---- runtime config (`rhizome config`) ---------------------------------------

  /** The charm's options with defaults and current values. */
  configOptions(): { unit: string; service: string; charm: string; options: ConfigOption[] } {
    return { unit: this.unit, service: this.service, charm: this.charm.metadata.name, options: describeConfig(this.charm.definition, this.unitCtx.config) };
  }

  /**
   * Changes options (key → text, read by each default's type; see
   * charm/config-options.ts). Checked in full first: a bad key or value
   * changes nothing. Then the handlers are rebuilt for the new config and
   * one `config.changed` run commits the new `config` fact (and the
   * overrides, so a restart keeps them). `dryRun` only checks.
   */
  reconfigure(set: Readonly<Record<string, string>>, dryRun: boolean): { unit: string; changed: string[]; config: Record<string, Json> } {
    const plan = planConfigChange(this.charm.definition, this.unitCtx.config, set);
    if (dryRun || plan.changed.length === 0) return { unit: this.unit, changed: plan.changed, config: plan.config };
    const ctx: UnitContext = Object.freeze({ ...this.unitCtx, config: Object.freeze({ ...plan.config }) });
    const rebuilt = buildHandlers(this.charm, ctx);
    this.unitCtx = ctx;
    for (const h of rebuilt) this.liveHandlers.set(h.name, h);
    const prior = getFact(this.engine_.knowledge, CONFIG_OVERRIDES_FACT);
    const overrides: Record<string, Json> = { ...(isJsonObject(prior) ? prior : {}) };
    for (const k of plan.changed) overrides[k] = plan.config[k]!;
    const config = plan.config as Json;
    this.log.info({ changed: plan.changed }, `config changed: ${plan.changed.join(', ')}`);
    this.engine_
      .submit(internalEvent('config.changed', config), {
        apply: (tx) => {
          tx.set('config', config);
          tx.set(CONFIG_OVERRIDES_FACT, overrides);
        },
      })
      .catch((err: unknown) => this.log.warn({ err }, 'config.changed run did not commit'));
    return { unit: this.unit, changed: plan.changed, config: plan.config };
  }

  // ---- actions (`rhizome run`) -------------------------------------------------

  actions(): { unit: string; charm: string; actions: { name: string; description: string }[] } {
    return { unit: this.unit, charm: this.charm.metadata.name, actions: describeActions(this.charm.definition) };
  }

  /**
   * Runs an action as one fail-fast run (see charm/actions.ts). Bad
   * parameters throw before anything runs; a failing action answers
   * `{ ok: false, error }` after its run rolled back.
   */
  async runAction(name: string, set: Readonly<Record<string, string>>): Promise<{ unit: string; action: string; ok: boolean; runId?: string; result?: Json; error?: string; durationMs: number }> {
    const params = readActionParams(this.charm.definition, name, set);
    const started = performance.now();
    try {
      const report = await this.engine_.submit(internalEvent(actionEvent(name), params), { failFast: true });
      const result = this.actionResults.get(report.runId) ?? null;
      this.actionResults.delete(report.runId);
      return { unit: this.unit, action: name, ok: true, runId: report.runId, result, durationMs: performance.now() - started };
    } catch (err) {
      return { unit: this.unit, action: name, ok: false, error: err instanceof Error ? err.message : String(err), durationMs: performance.now() - started };
    } finally {
      // Results of runs that failed after their action returned are never read: keep the map bounded.
      while (this.actionResults.size > 64) this.actionResults.delete(this.actionResults.keys().next().value!);
    }
  }

  /** Preconditions on facts nothing ever set, once start-up settled (undeclared facts only: declared ones are checked at load). */
  private charmWarnings(): { warnings?: string[] } {
    if (!this.engine_.startupSettled) return {};
    const never = this.engine_.neverSetFacts();
    if (never.length === 0) return {};
    const byFact = new Map<string, string[]>();
    for (const n of never) byFact.set(n.fact, [...(byFact.get(n.fact) ?? []), n.handler]);
    return {
      warnings: [...byFact].map(([f, hs]) => `handler${hs.length > 1 ? 's' : ''} ${hs.join(', ')} wait${hs.length > 1 ? '' : 's'} on fact '${f}', which no run has ever set (a misspelling? declare the charm's facts to catch it at load)`),
    };
  }

  members(): Member[] {
    return this.node_.members();
  }

  facts(): Record<string, Json> {
    return factsOf(this.engine_.knowledge);
  }

  runs(): readonly RunReport[] {
    return this.engine_.history();
  }

  resolve(skip: boolean): { state: string } {
    if (skip) this.engine_.skip();
    else this.engine_.resolve();
    return { state: this.engine_.status().state };
  }

  /** Serf's user event: to every member (this one included); each raises `user.<name>`. */
  sendEvent(name: string, payload: Json | undefined): { name: string; ltime: number; queuedTo: number } {
    if (typeof name !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$/.test(name) || name.startsWith('rz.')) {
      throw new AgentError('AGENT_ERR_BAD_REQUEST', `event name ${JSON.stringify(name)} must be letters, digits, ".", "_", "-" (not starting with "rz.")`);
    }
    const e = this.node_.sendEvent(name, payload ?? null);
    // Serf reports the members an event was queued for: the live ones now (this one included); gossip carries it on.
    return { name: e.name, ltime: e.ltime, queuedTo: this.liveMemberNames().length };
  }

  private liveMemberNames(): string[] {
    return this.node_
      .members()
      .filter((m) => m.status === 'alive' || m.status === 'suspect')
      .map((m) => m.name);
  }

  /**
   * A query whose acks and responses are yielded as they arrive, then a
   * `done` with totals. It ends at the timeout, or as soon as every member
   * alive when it started has responded (no waiting out the timeout for
   * answers that are all in).
   */
  queryStream(name: string, payload: Json | undefined, timeoutMs: number | undefined): AsyncGenerator<QueryStreamEvent> {
    // Checked before the stream starts, so a bad name is a 400, not a stream cut short.
    if (typeof name !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$/.test(name) || name.startsWith('rz.')) {
      throw new AgentError('AGENT_ERR_BAD_REQUEST', `query name ${JSON.stringify(name)} must be letters, digits, ".", "_", "-" (not starting with "rz.")`);
    }
    return this.queryEvents(name, payload, timeoutMs);
  }

  private async *queryEvents(name: string, payload: Json | undefined, timeoutMs: number | undefined): AsyncGenerator<QueryStreamEvent> {
    const started = Date.now();
    const expected = new Set(this.liveMemberNames());
    const handle = this.node_.query(name, payload ?? null, { requestAck: true, ...(timeoutMs !== undefined ? { timeout: timeoutMs } : {}) });
    const responded = new Set<string>();
    let acks = 0;
    try {
      for await (const e of handle) {
        if (e.type === 'ack') {
          acks++;
          yield { type: 'ack', from: e.from, ms: Date.now() - started };
          continue;
        }
        responded.add(e.from);
        yield { type: 'response', from: e.from, payload: e.payload as Json, ms: Date.now() - started };
        if ([...expected].every((m) => responded.has(m))) handle.close();
      }
    } finally {
      handle.close();
    }
    yield { type: 'done', acks, responses: responded.size, members: expected.size, ms: Date.now() - started, complete: [...expected].every((m) => responded.has(m)) };
  }

  async query(name: string, payload: Json | undefined, timeoutMs: number | undefined): Promise<{ acks: readonly string[]; responses: readonly { from: string; payload: unknown }[] }> {
    if (typeof name !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$/.test(name) || name.startsWith('rz.')) {
      throw new AgentError('AGENT_ERR_BAD_REQUEST', `query name ${JSON.stringify(name)} must be letters, digits, ".", "_", "-" (not starting with "rz.")`);
    }
    return this.node_.query(name, payload ?? null, { requestAck: true, ...(timeoutMs !== undefined ? { timeout: timeoutMs } : {}) }).done;
  }

  /** The local half of convergence (the CLI compares the halves of every unit). */
  converged(): LocalConvergence {
    const reasons: string[] = [];
    const es = this.engine_.status();
    if (es.state !== 'idle' || es.queued > 0) reasons.push(`engine ${es.state} with ${es.queued} queued`);
    if (es.error) reasons.push(`handler ${es.error.handler ?? '?'} failed: ${es.error.message}`);
    for (const l of this.manager.linkStatus()) {
      // A departed unit's link waits for it to come back; if it never does, it is forgotten when reaped or removed.
      if (l.departed) continue;
      if (l.unacked > 0) reasons.push(`link to ${l.remoteUnit} has ${l.unacked} unacked`);
      if (l.buffered > 0) reasons.push(`link from ${l.remoteUnit} has ${l.buffered} buffered`);
    }
    const kb = this.engine_.knowledge;
    const published: Record<string, { incarnation: number; version: number }> = {};
    for (const ep of Object.keys(this.charm.metadata.endpoints)) {
      const s = asEndpointState(kb.relations[ep]);
      published[ep] = { incarnation: s?.incarnation ?? 0, version: s?.local.version ?? 0 };
    }
    const views: LocalConvergence['views'][number][] = [];
    const relations: LocalConvergence['relations'][number][] = [];
    for (const v of this.directory_.views()) {
      if (!v.established) reasons.push(`relation ${v.id} not established: ${this.directory_.problems.get(v.id) ?? 'pending'}`);
      relations.push({ id: v.id, remoteService: v.remoteService, established: v.established, units: v.units.map((u) => u.unit) });
      for (const u of v.units) views.push({ relationId: v.id, endpoint: v.endpoint, remoteService: v.remoteService, remoteEndpoint: v.remoteEndpoint, unit: u.unit, incarnation: u.incarnation, version: u.version });
    }
    const members = this.node_
      .members()
      .filter((m) => m.status === 'alive' || m.status === 'suspect')
      .map((m) => m.name)
      .sort();
    const declarations = this.directory_.active().map((d) => ({ id: d.id, services: [d.a.service, d.b.service] as const }));
    const error = es.state === 'error' && es.error ? { error: { ...(es.error.handler !== undefined ? { handler: es.error.handler } : {}), code: es.error.code, message: es.error.message, event: es.error.event, attempts: es.error.attempts } } : {};
    return { unit: this.unit, ok: reasons.length === 0, reasons, members, published, views, relations, declarations, ...error };
  }

  /** Services seen in the mesh, by name, with their alive units. */
  services(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const m of this.node_.members()) {
      const s = serviceOf(m);
      if (s === undefined || m.status !== 'alive') continue;
      (out[s] ??= []).push(m.name);
    }
    return out;
  }

  // ---- logging ---------------------------------------------------------------

  private charmLogger(): CharmLogger {
    const base = this.log.child({ component: 'charm' });
    const pick = (): Logger => this.currentRunLog ?? base;
    const call = (level: 'info' | 'warn' | 'error' | 'debug') => (obj: object | string, msg?: string) => {
      const l = pick();
      if (typeof obj === 'string') l[level](obj);
      else l[level](obj, msg);
    };
    return { info: call('info'), warn: call('warn'), error: call('error'), debug: call('debug') };
  }

  /** Every line a handler (or the charm's logger) writes during a run carries the run id. */
  private wrapHandler(h: HandlerSpec): HandlerSpec {
    const run = async (ctx: HandlerContext): Promise<void> => {
      const log = runLogger(this.log, ctx.runId, { handler: ctx.handler });
      this.currentRunLog = log;
      log.debug('handler started');
      try {
        // Executors the handler calls log their steps (command, exit, output tail) on this run.
        // The live build of this handler: after `rhizome config` it closes over the new config.
        const impl = this.liveHandlers.get(h.name) ?? h;
        await withStepLog(log, () => impl.run(ctx));
        log.debug('handler finished');
      } catch (err) {
        log.warn({ err }, 'handler failed');
        throw err;
      } finally {
        this.currentRunLog = undefined;
      }
    };
    return { ...h, run };
  }

  private logReport(r: RunReport): void {
    const log = runLogger(this.log, r.runId);
    const fields = { event: r.eventLabel, attempt: r.attempt, outcome: r.outcome, durationMs: r.durationMs, handlers: r.steps.map((s) => s.handler), factsChanged: r.factsChanged };
    if (r.outcome === 'committed') log.info(fields, `run committed: ${r.eventLabel}`);
    else log.warn({ ...fields, error: r.error }, `run ${r.outcome}: ${r.eventLabel}${r.error ? ` (${r.error.handler ?? ''}: ${r.error.message})` : ''}`);
  }

  // ---- stop -------------------------------------------------------------------

  /** Stops gracefully (idempotent). */
  stop(): Promise<void> {
    this.stopping ??= this.teardown();
    return this.stopping;
  }

  private async teardown(): Promise<void> {
    const step = async (what: string, fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        this.log.warn({ err: toAgentError(err) }, `stop: ${what} failed`);
      }
    };
    await step('rejoin', () => this.rejoiner?.close());
    await step('file watch', () => this.watcher?.close());
    await step('relation directory', () => this.directory_?.stop());
    // The current run finishes (and commits) or fails (and rolls back); a
    // handler hung beyond the bound is abandoned: the store closes below, so
    // its commit can no longer become durable and it never takes effect.
    await step('engine', () =>
      this.engine_
        ? Promise.race([this.engine_.stop(), new Promise<void>((r) => setTimeout(r, this.options.stopTimeoutMs ?? 30_000).unref())])
        : undefined,
    );
    await step('relation manager', () => this.manager?.stop());
    this.transport?.close();
    for (const off of this.offs.splice(0)) off();
    await step('charm stop', () => (this.charm?.definition.stop && this.unitCtx ? this.charm.definition.stop(this.unitCtx) : undefined));
    await step('leave', () => (this.node_?.running ? this.node_.leave() : undefined));
    await step('gossip shutdown', () => this.node_?.shutdown());
    await step('control API', () => this.control?.close());
    await step('state', () => this.state?.close());
    this.gossipLog?.close();
    this.log.info('agent stopped');
    this.log.flush?.();
    this.logFile.close();
    this.markDone();
  }
}

/** The fact keeping the options an operator set at run time (they survive restarts). */
const CONFIG_OVERRIDES_FACT = 'config.overrides';

function isJsonObject(v: unknown): v is Record<string, Json> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isAgentConfig(v: unknown): v is AgentConfig {
  return v !== null && typeof v === 'object' && typeof (v as AgentConfig).service === 'string' && typeof (v as AgentConfig).snapshotEvery === 'number';
}

