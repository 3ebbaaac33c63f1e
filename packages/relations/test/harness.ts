/**
 * A simulated cluster for link tests: units with an engine, a relation
 * manager, a durable knowledge base (what onCommit accepted) and a durable
 * link store, over a SimLinkNetwork on virtual time. A crash stops the
 * manager, detaches the unit from the network and makes the old engine's
 * further commits non-durable; a restart builds a new engine and manager
 * from what was durable.
 */
import { seededRandom, VirtualClock } from '@rhizome/clock';
import { z } from 'zod';
import {
  defineHandler,
  Engine,
  event,
  relationEvent,
  type EngineOptions,
  type HandlerSpec,
  type Json,
  type KnowledgeBase,
} from '@rhizome/engine';
import * as engineApi from '@rhizome/engine';
import { defineInterface, InterfaceRegistry } from '../src/interface';
import { dfsSlave } from './interfaces/dfs-slave';
import { http } from './interfaces/http';
import { MemoryLinkStore, type LinkRecord, type LinkStore } from '../src/link-store';
import { LINK_SYNC_EVENT, RelationManager, type AddRelationSpec, type AppliedInfo, type RelationManagerOptions } from '../src/manager';
import { parseCharmMetadata, type CharmMetadata } from '../src/metadata';
import { relationsModel } from '../src/model';
import { relation } from '../src/relation';
import { SimLinkNetwork } from '../src/sim-transport';
import { asEndpointState, effectiveLocal, type EndpointState } from '../src/state';
import { asSendRecords, OUTBOX_PREFIX, outboxKey, type SendRecord } from '../src/send-record';

export const counter = defineInterface({
  name: 'counter',
  version: '1.0.0',
  provides: z.object({ value: z.number().int(), owner: z.string() }),
  requires: z.object({ value: z.number().int(), owner: z.string() }),
  peers: z.object({ value: z.number().int(), owner: z.string() }),
  app: z.object({ epoch: z.number().int() }),
});

export const srcMeta = parseCharmMetadata({ name: 'src', provides: { out: { interface: 'counter' } }, peers: { mates: { interface: 'counter' } } });
export const dstMeta = parseCharmMetadata({ name: 'dst', requires: { in: { interface: 'counter' } } });

const sideOf = (meta: CharmMetadata, endpoint: string) => {
  const role = meta.endpoints[endpoint]!.role;
  return role === 'provides' ? counter.provider : role === 'requires' ? counter.requirer : counter.peer;
};

/** The durable log of applied link messages: [relationId, from, seq, version (-1: no change)]. */
export const LOG = 'log.links';

/** Handlers of the test charm: publish on demand, and log every applied link message (durably, as a fact). */
export function testHandlers(meta: CharmMetadata, hooks: { failChanged?: () => boolean } = {}): HandlerSpec[] {
  const handlers: HandlerSpec[] = [];
  for (const endpoint of Object.keys(meta.endpoints)) {
    handlers.push(
      defineHandler({
        name: `publish-${endpoint}`,
        when: event(`publish.${endpoint}`),
        run(ctx) {
          const p = ctx.event?.payload as { value: number; owner: string };
          relation(ctx, endpoint, sideOf(meta, endpoint)).publish(p);
        },
      }),
      defineHandler({
        // Per-relation writes (`relation-set -r`); `fail` throws after writing, so the run must publish nothing.
        name: `scoped-${endpoint}`,
        when: event(`scoped.${endpoint}`),
        run(ctx) {
          const p = ctx.event?.payload as { relationId: string; publish?: { value?: number; owner?: string }; unpublish?: Array<'value' | 'owner'>; fail?: boolean; skipUnknown?: boolean };
          const rel = relation(ctx, endpoint, sideOf(meta, endpoint));
          // `skipUnknown`: a relation not (re-)created yet, e.g. right after a restart that lost the state, is left alone
          // (a failing run would hold the engine's inbox); without it an unknown id fails the run, as in production.
          if (p.skipUnknown && !rel.relationIds().includes(p.relationId)) return;
          if (p.publish) rel.publish(p.publish, { relationId: p.relationId });
          if (p.unpublish) rel.unpublish(...p.unpublish, { relationId: p.relationId });
          if (p.fail) throw new Error('handler failed after publishing (injected)');
        },
      }),
      defineHandler({
        name: `log-${endpoint}`,
        when: relationEvent(endpoint, 'changed'),
        run(ctx) {
          if (hooks.failChanged?.()) throw new Error('disk full (injected)');
          const e = ctx.event;
          if (e?.kind !== 'relation') return;
          const p = e.payload as { relationId: string; seq: number; version: number };
          const log = (ctx.get<Json[]>(LOG) ?? []) as Json[];
          ctx.set(LOG, [...log, [p.relationId, e.unit ?? '', p.seq, p.version]]);
        },
      }),
    );
  }
  handlers.push(
    defineHandler({
      // Messages whose bag was not newer are applied by a run of their own event: log them too.
      name: 'log-sync',
      when: event(LINK_SYNC_EVENT),
      run(ctx) {
        const p = ctx.event?.payload as { relationId: string; unit: string; seq: number };
        const log = (ctx.get<Json[]>(LOG) ?? []) as Json[];
        ctx.set(LOG, [...log, [p.relationId, p.unit, p.seq, -1]]);
      },
    }),
    defineHandler({
      name: 'write-app',
      when: event('app.epoch'),
      run(ctx) {
        const mates = relation(ctx, 'mates', counter.peer);
        if (mates.isLeader()) mates.publishApp({ epoch: ctx.event?.payload as number });
      },
    }),
  );
  return handlers;
}

/**
 * A committed fact. Reads through the engine's `getFact` when it has one
 * (sharded facts), else the flat record: the engine's storage layout is not
 * this package's concern.
 */
export function factOf(kb: KnowledgeBase, key: string): Json | undefined {
  const getFact = (engineApi as unknown as { getFact?: (kb: KnowledgeBase, key: string) => Json | undefined }).getFact;
  return getFact ? getFact(kb, key) : (kb.facts as unknown as Record<string, Json>)[key];
}

export class SimUnit {
  engine!: Engine;
  manager!: RelationManager;
  durable: KnowledgeBase | undefined;
  store: LinkStore = new MemoryLinkStore();
  readonly applied: AppliedInfo[] = [];
  private generation = 0;
  crashed = false;
  restarts = 0;
  /** Commits made durable (onCommit calls that completed): the unit's durable records, across restarts. */
  commits = 0;
  /** The interfaces this unit's charm speaks; replace it and restart() to simulate a charm upgrade. */
  interfaces: InterfaceRegistry;

  constructor(
    readonly cluster: SimCluster,
    readonly unit: string,
    readonly metadata: CharmMetadata,
    readonly handlers: HandlerSpec[],
    interfaces?: InterfaceRegistry,
  ) {
    this.interfaces = interfaces ?? cluster.interfaces;
    this.boot();
  }

  private boot(): void {
    const gen = ++this.generation;
    this.engine = new Engine({
      handlers: this.handlers,
      relationModel: relationsModel,
      clock: this.cluster.clock,
      random: seededRandom(gen * 7919),
      retry: { limit: 3, baseMs: 50, maxMs: 400, jitter: 0 },
      runIdPrefix: this.unit,
      ...(this.durable ? { initial: this.durable } : {}),
      ...this.cluster.engineOptions,
      // Group commit, as the agent runs it: later runs may start while a commit's (simulated) fsync is in flight.
      maxCommitsInFlight: 16,
      onCommit: async (c) => {
        // Durability takes (virtual) time, like an fsync: a crash in that window loses the commit.
        const fsync = this.cluster.fsyncMs;
        if (fsync > 0) await new Promise<void>((resolve) => this.cluster.clock.setTimeout(resolve, fsync));
        if (gen !== this.generation || this.crashed) throw new Error('crashed before the commit was durable');
        this.durable = c.kb;
        this.commits += 1;
      },
    });
    this.manager = new RelationManager({
      unit: this.unit,
      metadata: this.metadata,
      interfaces: this.interfaces,
      engine: this.engine,
      transport: this.cluster.net.attach(this.unit),
      store: this.store,
      clock: this.cluster.clock,
      retransmit: { baseMs: 40, maxMs: 640, window: 32, syncIntervalMs: 1_000 },
      onApplied: (info) => this.applied.push(info),
      // Virtual time: increases across restarts, like the wall clock.
      incarnation: () => this.cluster.stamp(),
      onError: (e) => this.cluster.errors.push(`${this.unit}: ${e instanceof Error ? e.message : String(e)}`),
      ...this.cluster.managerOptions,
      ...this.cluster.unitManagerOptions.get(this.unit),
    });
    this.manager.start();
    // The agent tells a restarted manager about the members the mesh knows (joins already committed are no-ops).
    if (gen > 1) {
      for (const spec of this.cluster.relations.get(this.unit) ?? []) void this.manager.addRelation(spec).catch(() => undefined);
      for (const [id, remote] of this.cluster.membership.get(this.unit) ?? []) void this.manager.unitJoined(id, remote).catch(() => undefined);
    }
  }

  crash(): void {
    if (this.crashed) return;
    if (this.engine.status().state === 'running') this.cluster.midRunCrashes += 1;
    this.crashed = true;
    this.manager.stop();
    this.cluster.net.detach(this.unit);
    void this.engine.stop().catch(() => undefined);
  }

  /** A restart that lost the link store (the knowledge base survived). */
  restartWithoutLinkStore(): void {
    this.crash();
    this.store = new MemoryLinkStore();
    this.restart();
  }

  /** A restart that lost the knowledge base and the link store (the agent re-creates its relations from its configuration). */
  restartFromScratch(): void {
    this.crash();
    this.durable = undefined;
    this.store = new MemoryLinkStore();
    this.restart();
  }

  restart(): void {
    if (!this.crashed) this.crash();
    this.crashed = false;
    this.restarts += 1;
    this.boot();
  }

  /** The committed knowledge base of the live engine (= durable, since every commit goes through onCommit). */
  get kb(): KnowledgeBase {
    return this.engine.knowledge;
  }

  fact(key: string): Json | undefined {
    return factOf(this.kb, key);
  }

  state(endpoint: string): EndpointState | undefined {
    return asEndpointState(this.kb.relations[endpoint]);
  }

  publish(endpoint: string, value: number): Promise<unknown> {
    return this.engine.submit({ kind: 'internal', name: `publish.${endpoint}`, payload: { value, owner: this.unit } });
  }

  /** Runs the `scoped-<endpoint>` handler: per-relation publish/unpublish on `relationId` (and a failure after, if `fail`). */
  scoped(endpoint: string, payload: { relationId: string; publish?: { value?: number; owner?: string }; unpublish?: Array<'value' | 'owner'>; fail?: boolean; skipUnknown?: boolean }) {
    return this.engine.submit({ kind: 'internal', name: `scoped.${endpoint}`, payload });
  }
}

export class SimCluster {
  readonly clock = new VirtualClock();
  readonly net: SimLinkNetwork;
  readonly interfaces = new InterfaceRegistry([counter, dfsSlave, http]);
  readonly units = new Map<string, SimUnit>();
  readonly errors: string[] = [];
  /** unit -> the relations the agent was told to create (its configuration), re-applied after a restart. */
  readonly relations = new Map<string, AddRelationSpec[]>();
  /** unit -> the (relation, remote unit) pairs the mesh announced to it, re-announced after a restart, as the agent does. */
  readonly membership = new Map<string, Array<[string, string]>>();
  /** Crashes that interrupted a run (e.g. between the run and its durable commit). */
  midRunCrashes = 0;
  private lastStamp = 0;
  /** Overrides for every unit's RelationManager. */
  managerOptions: Partial<Pick<RelationManagerOptions, 'maxOutbox' | 'maxInbox' | 'retransmit'>> = {};
  /** Overrides for one unit's RelationManager (set before add()). */
  readonly unitManagerOptions = new Map<string, Partial<Pick<RelationManagerOptions, 'linkProtocol'>>>();
  /** Overrides for every unit's Engine (e.g. the agent's burst window). */
  engineOptions: Partial<Pick<EngineOptions, 'burst'>> = {};
  /** Virtual time a commit takes to become durable. */
  fsyncMs = 0;

  constructor(seed = 1) {
    this.net = new SimLinkNetwork({ clock: this.clock, seed });
  }

  /** A wall clock for incarnations and epochs: virtual ms scaled, strictly increasing even within one ms. */
  stamp(): number {
    this.lastStamp = Math.max(this.lastStamp + 1, Math.floor(this.clock.now()) * 1000);
    return this.lastStamp;
  }

  add(unit: string, metadata: CharmMetadata, handlers = testHandlers(metadata), interfaces?: InterfaceRegistry): SimUnit {
    const u = new SimUnit(this, unit, metadata, handlers, interfaces);
    this.units.set(unit, u);
    return u;
  }

  get(unit: string): SimUnit {
    const u = this.units.get(unit);
    if (!u) throw new Error(`no unit ${unit}`);
    return u;
  }

  /** Relates two endpoints on every unit of both services, and announces every unit to every remote unit. */
  async relate(id: string, a: SimUnit[], aEndpoint: string, b: SimUnit[], bEndpoint: string): Promise<void> {
    const service = (u: SimUnit) => u.unit.split('/')[0]!;
    const peers = service(a[0]!) === service(b[0]!);
    const add = (u: SimUnit, spec: AddRelationSpec): void => {
      this.relations.set(u.unit, [...(this.relations.get(u.unit) ?? []), spec]);
      void u.manager.addRelation(spec);
    };
    for (const u of a) add(u, { id, endpoint: aEndpoint, remoteService: service(b[0]!), remoteEndpoint: bEndpoint, remoteMetadata: b[0]!.metadata });
    if (!peers) for (const u of b) add(u, { id, endpoint: bEndpoint, remoteService: service(a[0]!), remoteEndpoint: aEndpoint, remoteMetadata: a[0]!.metadata });
    const members = new Map<SimUnit, string[]>();
    for (const u of a) members.set(u, b.filter((v) => v !== u).map((v) => v.unit));
    if (!peers) for (const v of b) members.set(v, a.map((u) => u.unit));
    for (const [u, remotes] of members) {
      const known = this.membership.get(u.unit) ?? [];
      for (const r of remotes) known.push([id, r]);
      this.membership.set(u.unit, known);
      for (const r of remotes) void u.manager.unitJoined(id, r);
    }
    // Let the relation runs commit (a simulated fsync takes virtual time).
    await this.tick(Math.max(20, this.fsyncMs * 20));
  }

  /** Lets every pending promise and run finish, as far as it can without virtual time passing. */
  async settle(): Promise<void> {
    // Runs only wait on microtasks (and on virtual time, for a simulated fsync),
    // so a few macrotask turns let every chain of them finish.
    for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
  }

  /** Advances virtual time in steps, settling after each. */
  async tick(ms: number, step = 20): Promise<void> {
    for (let t = 0; t < ms; t += step) {
      this.clock.advanceSync(Math.min(step, ms - t));
      for (let i = 0; i < 4; i++) await new Promise<void>((r) => setImmediate(r));
    }
    await this.settle();
  }

  /** Ticks until `done()` or `maxMs` of virtual time; returns whether it became true. */
  async until(done: () => boolean, maxMs: number, step = 50): Promise<boolean> {
    for (let t = 0; t <= maxMs; t += step) {
      if (done()) return true;
      await this.tick(step, step);
    }
    return done();
  }
}

/** Every unit's view of every joined remote unit's bag equals what that unit committed for the relation (its effective bag). Returns the mismatches. */
export function viewMismatches(cluster: SimCluster): string[] {
  const out: string[] = [];
  for (const u of cluster.units.values()) {
    for (const [endpoint, raw] of Object.entries(u.kb.relations)) {
      const s = asEndpointState(raw);
      if (!s) continue;
      for (const [relId, rel] of Object.entries(s.relations)) {
        for (const [remote, view] of Object.entries(rel.units)) {
          const r = cluster.units.get(remote);
          const rs = r?.state(rel.remoteEndpoint);
          if (!rs) continue;
          const committed = effectiveLocal(rs, relId) ?? rs.local;
          if (view.version !== committed.version || JSON.stringify(view.bag) !== JSON.stringify(committed.bag)) {
            out.push(`${u.unit} sees ${remote} on ${endpoint}/${relId} at v${view.version} ${JSON.stringify(view.bag)}, committed is v${committed.version} ${JSON.stringify(committed.bag)}`);
          }
        }
      }
    }
  }
  return out;
}

/** A unit's durable send records (the sending side of its links, in its knowledge base): [relation id, remote unit, record]. */
export function sendRecords(u: SimUnit): Array<[string, string, SendRecord]> {
  const out: Array<[string, string, SendRecord]> = [];
  for (const [key, value] of Object.entries(u.kb.relations)) {
    if (!key.startsWith(OUTBOX_PREFIX)) continue;
    for (const [unit, rec] of Object.entries(asSendRecords(value))) out.push([key.slice(OUTBOX_PREFIX.length), unit, rec]);
  }
  return out;
}

/** The durable send record of `u`'s link to `remote` on `relationId`. */
export function sendRecordOf(u: SimUnit, relationId: string, remote: string): SendRecord | undefined {
  return asSendRecords(u.kb.relations[outboxKey(relationId)])[remote];
}

/**
 * Rewrites a crashed unit's durable state the way an agent of an earlier
 * version kept it: its send records in the link store, not in the knowledge
 * base. `edit` may change each record on the way (e.g. drop fields that
 * version did not write).
 */
export function storeAsOlderAgent(u: SimUnit, edit: (r: LinkRecord) => LinkRecord = (r) => r): void {
  if (!u.crashed || !u.durable) throw new Error('crash the unit first');
  const relations: Record<string, Json> = {};
  for (const [key, value] of Object.entries(u.durable.relations)) {
    if (!key.startsWith(OUTBOX_PREFIX)) {
      relations[key] = value;
      continue;
    }
    const relationId = key.slice(OUTBOX_PREFIX.length);
    for (const [unit, rec] of Object.entries(asSendRecords(value))) u.store.put(`${relationId}|${unit}`, edit({ ...structuredClone(rec), inbox: [] }));
  }
  u.durable = { ...u.durable, relations };
}
