/**
 * A simulated cluster for link tests: units with an engine, a relation
 * manager, a durable knowledge base (what onCommit accepted) and a durable
 * link store, over a SimLinkNetwork on virtual time. A crash stops the
 * manager, detaches the unit from the network and makes the old engine's
 * further commits non-durable; a restart builds a new engine and manager
 * from what was durable.
 */
import { z } from 'zod';
import {
  defineHandler,
  Engine,
  event,
  ManualClock,
  relationEvent,
  type HandlerSpec,
  type Json,
  type KnowledgeBase,
} from '@rhizome/engine';
import { defineInterface, InterfaceRegistry } from '../src/interface';
import { MemoryLinkStore } from '../src/link-store';
import { RelationManager, type AppliedInfo } from '../src/manager';
import { parseCharmMetadata, type CharmMetadata } from '../src/metadata';
import { relationsModel } from '../src/model';
import { relation } from '../src/relation';
import { SimLinkNetwork, seededRandom } from '../src/sim-transport';
import { asEndpointState, type EndpointState } from '../src/state';

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

/** Handlers of the test charm: publish on demand, and log every `changed` it sees (durably, as a fact). */
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
        name: `log-${endpoint}`,
        when: relationEvent(endpoint, 'changed'),
        run(ctx) {
          if (hooks.failChanged?.()) throw new Error('disk full (injected)');
          const e = ctx.event;
          if (e?.kind !== 'relation') return;
          const p = e.payload as { relationId: string; seq: number; version: number };
          const key = `log.${endpoint}`;
          const log = (ctx.get<Json[]>(key) ?? []) as Json[];
          ctx.set(key, [...log, [p.relationId, e.unit ?? '', p.seq, p.version]]);
        },
      }),
    );
  }
  handlers.push(
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

export class SimUnit {
  engine!: Engine;
  manager!: RelationManager;
  durable: KnowledgeBase | undefined;
  readonly store = new MemoryLinkStore();
  readonly applied: AppliedInfo[] = [];
  private generation = 0;
  crashed = false;
  restarts = 0;

  constructor(
    readonly cluster: SimCluster,
    readonly unit: string,
    readonly metadata: CharmMetadata,
    readonly handlers: HandlerSpec[],
  ) {
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
      onCommit: (c) => {
        if (gen !== this.generation || this.crashed) throw new Error('crashed before the commit was durable');
        this.durable = c.kb;
      },
    });
    this.manager = new RelationManager({
      unit: this.unit,
      metadata: this.metadata,
      interfaces: this.cluster.interfaces,
      engine: this.engine,
      transport: this.cluster.net.attach(this.unit),
      store: this.store,
      clock: this.cluster.clock,
      retransmit: { baseMs: 40, maxMs: 640, window: 32 },
      onApplied: (info) => this.applied.push(info),
      onError: (e) => this.cluster.errors.push(`${this.unit}: ${e instanceof Error ? e.message : String(e)}`),
    });
    this.manager.start();
  }

  crash(): void {
    if (this.crashed) return;
    this.crashed = true;
    this.manager.stop();
    this.cluster.net.detach(this.unit);
    void this.engine.stop().catch(() => undefined);
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

  state(endpoint: string): EndpointState | undefined {
    return asEndpointState(this.kb.relations[endpoint]);
  }

  publish(endpoint: string, value: number): Promise<unknown> {
    return this.engine.submit({ kind: 'internal', name: `publish.${endpoint}`, payload: { value, owner: this.unit } });
  }
}

export class SimCluster {
  readonly clock = new ManualClock();
  readonly net: SimLinkNetwork;
  readonly interfaces = new InterfaceRegistry([counter]);
  readonly units = new Map<string, SimUnit>();
  readonly errors: string[] = [];

  constructor(seed = 1) {
    this.net = new SimLinkNetwork({ clock: this.clock, seed });
  }

  add(unit: string, metadata: CharmMetadata, handlers = testHandlers(metadata)): SimUnit {
    const u = new SimUnit(this, unit, metadata, handlers);
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
    for (const u of a) void u.manager.addRelation({ id, endpoint: aEndpoint, remoteService: service(b[0]!), remoteEndpoint: bEndpoint, remoteMetadata: b[0]!.metadata });
    if (a !== b) for (const u of b) void u.manager.addRelation({ id, endpoint: bEndpoint, remoteService: service(a[0]!), remoteEndpoint: aEndpoint, remoteMetadata: a[0]!.metadata });
    for (const u of a) for (const v of b) if (u !== v) void u.manager.unitJoined(id, v.unit);
    if (a !== b) for (const v of b) for (const u of a) void v.manager.unitJoined(id, u.unit);
    await this.settle();
  }

  /** Lets every pending promise, run and zero-delay callback finish (no virtual time passes). */
  async settle(): Promise<void> {
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((r) => setImmediate(r));
      await Promise.all([...this.units.values()].filter((u) => !u.crashed).map((u) => Promise.race([u.engine.whenIdle(), new Promise((r) => setTimeout(r, 50))])));
    }
  }

  /** Advances virtual time in steps, settling after each. */
  async tick(ms: number, step = 20): Promise<void> {
    for (let t = 0; t < ms; t += step) {
      this.clock.advance(Math.min(step, ms - t));
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

/** Every unit's view of every joined remote unit's bag equals that unit's committed bag. Returns the mismatches. */
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
          if (view.version !== rs.local.version || JSON.stringify(view.bag) !== JSON.stringify(rs.local.bag)) {
            out.push(`${u.unit} sees ${remote} on ${endpoint}/${relId} at v${view.version} ${JSON.stringify(view.bag)}, committed is v${rs.local.version} ${JSON.stringify(rs.local.bag)}`);
          }
        }
      }
    }
  }
  return out;
}
