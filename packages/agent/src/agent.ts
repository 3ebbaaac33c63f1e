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
 *   6. the relation manager (links over the mesh; their state in the knowledge base) and the
 *      relation directory (declarations, joined/departed from membership);
 *   7. `engine.start()`, then file watches (`file.changed` with `{ path }`).
 *
 * Stop (SIGTERM): watches closed, the current run finished (`engine.stop()`
 * lets it commit or roll back), links stopped, the charm's `stop`, a
 * graceful leave, the transport and control API closed, the state flushed
 * and unlocked. Stop for a restart (SIGUSR2): the same without the charm's
 * `stop` and the leave (see `stop`).
 */
import { join } from 'node:path';
import { systemClock } from '@rhizome/clock';
import { Engine, factsOf, getFact, internalEvent, jsonEqual, type Json, type RunReport } from '@rhizome/engine';
import type { GossipNode, Member } from '@rhizome/gossip';
import { RelationManager, relationsModel } from '@rhizome/relations';
import { AGENT_INFO_FILE, writeJsonAtomic, type AgentInfo } from './agent-info';
import { declaredWorkloads, loadCharm, watchedFiles } from './charm/load';
import { parseAgentConfig, type AgentConfig } from './config';
import { writeControlEndpoint } from './control/endpoint';
import { buildControlRoutes } from './control/routes';
import { createControlServer } from './control/server';
import { loadOrCreateToken } from './control/token';
import { writeWorkloadManifest } from './deploy/workloads';
import { AgentError, toAgentError } from './errors';
import type { SummarizingLogger } from './internal/log-summary';
import { planNetwork } from './internal/network-plan';
import { ensurePrivateDir, tightenFile } from './internal/private-fs';
import { persistKeyringChanges } from './keys/keyring-file';
import { openLogFile, type LogFile } from './log/log-file';
import { LogTail } from './log/log-tail';
import { createLogger, type Logger } from './log/logger';
import { MeshLinkTransport } from './mesh/link-transport';
import { readMeshMemory, Rejoiner } from './mesh/rejoin';
import { RelationDirectory } from './mesh/relation-directory';
import { RemoteControl } from './mesh/remote-control';
import { DurableState, GROUP_COMMIT_MAX_IN_FLIGHT } from './state/durable-state';
import { checkStateFormat, recordStateFormat, STATE_FORMAT } from './state/state-format';
import { agentVersion } from './runtime';
import { DEFAULT_AGENT_GOSSIP_TUNING, DEFAULT_RELATION_BURST, type AgentOptions } from './unit/agent-options';
import type { ActionList, ActionOutcome, AgentApi, AgentStatus, ConfigChange, ConfigView, LocalConvergence, QueryStreamEvent } from './unit/api';
import { CharmRuntime, CONFIG_OVERRIDES_FACT } from './unit/charm-runtime';
import { query, queryStream, sendUserEvent } from './unit/mesh-calls';
import { routeMeshEvents } from './unit/mesh-events';
import { startMeshNode } from './unit/mesh-node';
import type { AgentParts } from './unit/parts';
import { logReport } from './unit/run-log';
import { agentInfo, agentStatus, localConvergence, meshServices, workloadOf } from './unit/views';
import { watchFiles } from './watch/watch-files';

/** See AgentOptions.restartGraceMs. */
const RESTART_GRACE_MS = 60_000;

type Booting = { -readonly [K in keyof AgentParts]?: AgentParts[K] };

export class Agent implements AgentApi {
  readonly config: AgentConfig;
  readonly unitDir: string;
  readonly logTail = new LogTail();
  readonly log: Logger;
  private readonly logFile: LogFile;
  private gossipLog: SummarizingLogger | undefined;
  /** What start-up has built so far; `parts` once it is all there. */
  private readonly booting: Booting;
  private parts_: AgentParts | undefined;
  private readonly offs: Array<() => void> = [];
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
    this.booting = { config, unitDir: this.unitDir, startedAt: Date.now() };
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

  /** The booted parts; throws while the agent is still starting. */
  private get parts(): AgentParts {
    if (!this.parts_) throw new AgentError('AGENT_ERR_NOT_RUNNING', `agent ${this.config.unit} is still starting; ask again in a moment`);
    return this.parts_;
  }

  get unit(): string {
    return this.config.unit;
  }
  get service(): string {
    return this.config.service;
  }
  get engine(): Engine {
    return this.parts.engine;
  }
  get node(): GossipNode {
    return this.parts.node;
  }
  get directory(): RelationDirectory {
    return this.parts.directory;
  }
  get controlUrl(): string {
    return this.parts.control.url;
  }
  /** Other units' agents, over the mesh (status, facts, runs, logs, resolve). */
  get remote(): RemoteControl {
    return this.parts.remote;
  }
  get gossipAddress(): string {
    return this.parts.node.address;
  }
  get stopped(): boolean {
    return this.stopping !== undefined;
  }

  private async boot(): Promise<void> {
    const c = this.config;
    const p = this.booting;
    // 0. where this unit is on the network (refuses to start exposed without a keyring)
    const remembered = await readMeshMemory(c.dataDir);
    const net = await planNetwork(c, remembered.port);
    p.net = net;
    if (net.note) this.log.info({ advertise: net.advertiseHost }, net.note);
    if (net.insecure) {
      this.log.warn({ bind: c.bindHost }, `INSECURE: gossip is unencrypted on ${c.bindHost} (--insecure): anyone who reaches this port can join the mesh and change relation data`);
    }
    // 1. state: refused before anything reads it when a newer release wrote it (state-format.ts)
    const stateDir = join(c.dataDir, 'state');
    const format = await checkStateFormat(stateDir, agentVersion());
    const state = await DurableState.open({
      dir: stateDir,
      fsync: this.options.fsync ?? true,
      snapshotEvery: c.snapshotEvery,
      onFailure: (err) => {
        this.log.fatal({ err }, 'the durable state failed; stopping the agent');
        this.failure = err;
        void this.stop();
      },
    });
    p.state = state;
    if (format?.format !== STATE_FORMAT || format.writtenBy !== agentVersion()) await recordStateFormat(stateDir, agentVersion(), this.options.fsync ?? true);
    const rec = state.recovery;
    this.log.info({ generation: rec.generation, recordsReplayed: rec.recordsReplayed, tornBytesDropped: rec.tornBytesDropped }, 'state recovered');

    // 2. charm (options an operator changed at run time are kept in the state and win over the file's)
    const loaded = await loadCharm(c.charmDir, c.charmModule);
    const charm = new CharmRuntime({
      charm: loaded,
      unit: c.unit,
      service: c.service,
      dir: this.unitDir,
      address: net.advertiseHost,
      options: c.options,
      overrides: getFact(state.recoveredKb, CONFIG_OVERRIDES_FACT),
      log: this.log,
    });
    p.charm = charm;
    const handlers = charm.handlers();
    // Also when started without the CLI (a supervisor): `rhizome destroy` finds the daemons to stop there.
    await writeWorkloadManifest(c.dataDir, c.unit, declaredWorkloads(loaded, charm.unitContext));

    // 3. engine. One time source for the engine, the gossip node and the relation links: each timer
    // says whether it keeps the process alive (@rhizome/clock).
    const clock = systemClock;
    const engine = new Engine({
      handlers,
      clock,
      ...(loaded.definition.facts !== undefined ? { facts: loaded.definition.facts } : {}),
      relationModel: relationsModel,
      initial: state.recoveredKb,
      onCommit: (commit) => state.commitRun(commit),
      // Group commit: the log appends commits in order and fsyncs them in batches, so later runs need not wait
      // for an earlier run's fsync; acks, link messages and status still wait until a commit is durable.
      maxCommitsInFlight: GROUP_COMMIT_MAX_IN_FLIGHT,
      onError: (err) => this.log.error({ err }, 'engine listener failed'),
      runIdPrefix: c.unit,
      // A burst of relation changes (units joining, a relate) gathers for a moment and converges in one run.
      burst: this.options.relationBurst ?? DEFAULT_RELATION_BURST,
      ...(this.options.retry ? { retry: this.options.retry } : {}),
    });
    p.engine = engine;
    this.offs.push(engine.onReport((r) => logReport(this.log, r)));

    // 4. control API
    const token = await loadOrCreateToken(c.dataDir);
    const control = await createControlServer({
      port: c.controlPort,
      token,
      routes: buildControlRoutes(this),
      errorStatus: controlErrorStatus,
    });
    p.control = control;

    // 5. gossip (unit/mesh-node.ts)
    const mesh = await startMeshNode({
      config: c,
      net,
      clock,
      metadata: loaded.metadata,
      tuning: { ...DEFAULT_AGENT_GOSSIP_TUNING, ...this.options.gossip },
      warmUp: this.options.gossipWarmUp ?? false,
      logSummaryIntervalMs: this.options.logSummaryIntervalMs,
      log: this.log,
      remembered,
    });
    const { node } = mesh;
    this.gossipLog = mesh.gossipLog;
    p.encrypted = mesh.encrypted;
    p.node = node;
    // `rhizome keys` changed this member's keyring: persist it, so a restart keeps the keys the cluster uses.
    if (c.keyringFile !== undefined) this.offs.push(persistKeyringChanges(node, c.keyringFile, this.log));
    const remote = new RemoteControl(
      node,
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
        action: (name, params, background) => this.runAction(name, params, background),
      },
      c.label,
    );
    p.remote = remote;
    this.offs.push(() => remote.close());

    // 6. relations
    const transport = new MeshLinkTransport(node);
    p.transport = transport;
    const manager = new RelationManager({
      unit: c.unit,
      clock,
      metadata: loaded.metadata,
      interfaces: loaded.interfaces,
      engine,
      transport,
      // Only what agents of earlier versions kept there: the manager moves it into the knowledge base.
      store: state.linkStore,
      ...(this.options.retransmit ? { retransmit: this.options.retransmit } : {}),
      onError: (err) => this.log.warn({ err }, 'relation link error'),
    });
    p.manager = manager;
    const directory = new RelationDirectory({
      unit: c.unit,
      service: c.service,
      metadata: loaded.metadata,
      node,
      state,
      manager,
      engine,
      log: this.log.child({ component: 'relations' }),
      ...(this.options.absentGraceMs !== undefined ? { absentGraceMs: this.options.absentGraceMs } : {}),
    });
    p.directory = directory;
    this.offs.push(...routeMeshEvents(node, engine, c, this.log));
    manager.start();
    directory.start();

    // 7. go
    engine.start().catch((err: unknown) => this.log.warn({ err }, 'start run did not commit'));
    // Juju's config-changed: the charm config (defaults + options) is the fact
    // `config`; when it differs from the one committed (first start, or the
    // operator changed an option), `config.changed` runs with the new config.
    const charmConfig = charm.unitContext.config as Json;
    if (!jsonEqual(getFact(engine.knowledge, 'config'), charmConfig)) {
      engine
        .submit(internalEvent('config.changed', charmConfig), { apply: (tx) => tx.set('config', charmConfig) })
        .catch((err: unknown) => this.log.warn({ err }, 'config.changed run did not commit'));
    }
    const rejoiner = new Rejoiner({
      node,
      dataDir: c.dataDir,
      seeds: c.seeds,
      remembered,
      log: this.log,
      onJoined: () => void directory.syncFromPeers(),
    });
    p.rejoiner = rejoiner;
    await rejoiner.start();
    const files = watchedFiles(loaded, charm.unitContext);
    p.watcher = undefined;
    if (files.length > 0) {
      p.watcher = await watchFiles({
        paths: files,
        ...(this.options.watchDebounceMs !== undefined ? { debounceMs: this.options.watchDebounceMs } : {}),
        onChange: (paths) => {
          for (const path of paths) {
            engine.submit(internalEvent('file.changed', { path })).catch((err: unknown) => this.log.debug({ err, path }, 'file.changed run did not commit'));
          }
        },
        onError: (err) => this.log.warn({ err }, 'file watch error'),
      });
    }
    this.parts_ = completeParts(p);
    await writeControlEndpoint(c.dataDir, { url: control.url, pid: process.pid });
    await writeJsonAtomic(join(c.dataDir, AGENT_INFO_FILE), this.info());
    this.log.info({ control: control.url, gossip: node.address, charm: loaded.file }, 'agent started');
  }

  // ---- what the control API and the mesh ask (views: unit/views.ts; calls: unit/mesh-calls.ts) ----

  info(): AgentInfo {
    return agentInfo(this.parts);
  }
  status(): AgentStatus {
    return agentStatus(this.parts);
  }
  workload(): { state: string; message: string } | undefined {
    return workloadOf(this.parts);
  }
  converged(): LocalConvergence {
    return localConvergence(this.parts);
  }
  /** Services seen in the mesh, by name, with their alive units. */
  services(): Record<string, string[]> {
    return meshServices(this.parts);
  }
  members(): Member[] {
    return this.parts.node.members();
  }
  facts(): Record<string, Json> {
    return factsOf(this.parts.engine.knowledge);
  }
  runs(): readonly RunReport[] {
    return this.parts.engine.history();
  }
  resolve(skip: boolean): { state: string } {
    const engine = this.parts.engine;
    if (skip) engine.skip();
    else engine.resolve();
    return { state: engine.status().state };
  }
  configOptions(): ConfigView {
    return this.parts.charm.configOptions();
  }
  reconfigure(set: Readonly<Record<string, string>>, dryRun: boolean): ConfigChange {
    return this.parts.charm.reconfigure(this.parts.engine, set, dryRun);
  }
  actions(): ActionList {
    return this.parts.charm.actions();
  }
  runAction(name: string, set: Readonly<Record<string, string>>, background = false): Promise<ActionOutcome> {
    return this.parts.charm.runAction(this.parts.engine, name, set, background);
  }
  sendEvent(name: string, payload: Json | undefined): { name: string; ltime: number; queuedTo: number } {
    return sendUserEvent(this.parts.node, name, payload);
  }
  query(name: string, payload: Json | undefined, timeoutMs: number | undefined): Promise<{ acks: readonly string[]; responses: readonly { from: string; payload: unknown }[] }> {
    return query(this.parts.node, name, payload, timeoutMs);
  }
  queryStream(name: string, payload: Json | undefined, timeoutMs: number | undefined): AsyncGenerator<QueryStreamEvent> {
    return queryStream(this.parts.node, name, payload, timeoutMs);
  }

  // ---- stop -------------------------------------------------------------------

  /**
   * Stops gracefully (idempotent: a second call joins the first, whatever it
   * asks). `restart` (SIGUSR2, sent by `rhizome upgrade-model`): a start from
   * the same data directory follows at once, so the unit neither leaves the
   * mesh (peers see it suspect for a moment and it refutes when back: no
   * departed and joined again in related charms) nor runs its charm's `stop`
   * (its workloads keep serving; the new agent takes them over, as after a
   * crash). State is flushed as on any stop.
   */
  stop(options: { readonly restart?: boolean } = {}): Promise<void> {
    this.stopping ??= this.teardown(options.restart === true);
    return this.stopping;
  }

  private async teardown(restart = false): Promise<void> {
    const step = async (what: string, fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        this.log.warn({ err: toAgentError(err) }, `stop: ${what} failed`);
      }
    };
    const p = this.booting;
    // Peers hold back this unit's departed while it restarts (relation-directory.ts).
    if (restart) await step('restart notice', () => p.directory?.announceRestart(this.options.restartGraceMs ?? RESTART_GRACE_MS));
    await step('rejoin', () => p.rejoiner?.close());
    await step('file watch', () => p.watcher?.close());
    await step('relation directory', () => p.directory?.stop());
    // The current run finishes (and commits) or fails (and rolls back); a
    // handler hung beyond the bound is abandoned: the store closes below, so
    // its commit can no longer become durable and it never takes effect.
    const engine = p.engine;
    await step('engine', () =>
      engine ? Promise.race([engine.stop(), new Promise<void>((r) => setTimeout(r, this.options.stopTimeoutMs ?? 30_000).unref())]) : undefined,
    );
    await step('relation manager', () => p.manager?.stop());
    p.transport?.close();
    for (const off of this.offs.splice(0)) off();
    const charm = p.charm;
    if (!restart) await step('charm stop', () => charm?.charm.definition.stop?.(charm.unitContext));
    const node = p.node;
    if (!restart) await step('leave', () => (node?.running ? node.leave() : undefined));
    await step('gossip shutdown', () => node?.shutdown());
    await step('control API', () => p.control?.close());
    await step('state', () => p.state?.close());
    this.gossipLog?.close();
    this.log.info('agent stopped');
    this.log.flush?.();
    this.logFile.close();
    this.markDone();
  }
}

/** HTTP statuses for errors the control API's callers caused. */
function controlErrorStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  if (code === 'ENGINE_ERR_STATE') return 409;
  if (code.startsWith('REL_ERR_')) return 400;
  // The operator's payload is beyond the wire's limits (the message names the limit).
  if (code === 'GOSSIP_ERR_EVENT_TOO_LARGE' || code === 'GOSSIP_ERR_QUERY_TOO_LARGE' || code === 'GOSSIP_ERR_PAYLOAD_TOO_DEEP') return 400;
  return undefined;
}

/** The parts once start-up has built every one (a missing one is a bug in boot's order). */
function completeParts(p: Booting): AgentParts {
  const missing = PART_NAMES.filter((k) => !(k in p));
  if (missing.length > 0) throw new AgentError('AGENT_ERR_INTERNAL', `agent start-up left ${missing.join(', ')} unset`);
  return Object.freeze({ ...p }) as AgentParts;
}

const PART_NAMES: readonly (keyof AgentParts)[] = [
  'config', 'unitDir', 'startedAt', 'net', 'encrypted', 'state', 'charm', 'engine', 'control', 'node', 'remote', 'transport', 'manager', 'directory', 'rejoiner', 'watcher',
];

function isAgentConfig(v: unknown): v is AgentConfig {
  return v !== null && typeof v === 'object' && typeof (v as AgentConfig).service === 'string' && typeof (v as AgentConfig).snapshotEvery === 'number';
}
