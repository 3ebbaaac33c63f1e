/**
 * The relation directory: which service endpoints are related, known to
 * every agent without an orchestrator.
 *
 * Declarations. `relate A:x B:y` (on any agent) checks the two endpoints
 * against each other (their roles and interfaces, read from the tags of
 * members of both services) and produces a declaration with a stable id
 * (the same whichever order the endpoints were given), a stamp and its
 * origin; `unrelate` produces a tombstone of the same id with a newer stamp.
 * Declarations merge last-writer-wins by (stamp, origin), so every agent
 * ends with the same set whatever order they arrive in, and a tombstone is
 * never resurrected by a late copy of the relate it removed.
 *
 * Spreading. A new declaration is persisted, then sent to every member as a
 * gossip user event. User events are not replayed to late joiners, so a
 * joining (or restarting) agent asks its peers with a query for the whole
 * set, and every agent repeats that query now and then (anti-entropy for an
 * event it missed while it was down).
 *
 * Acting. Each agent acts only on the declarations involving its own
 * service, and only through the relation manager:
 *   - relation declared and the remote service's metadata known -> addRelation;
 *   - each alive (or suspect) member of the remote service -> unitJoined;
 *   - a joined unit whose member failed or left, or that is no longer known
 *     to the mesh at all (reaped) -> unitDeparted: a mesh failure is a
 *     `departed` on every relation with that unit;
 *   - tombstone -> removeRelation (`broken`);
 *   - except a unit that said it stops for a restart (RESTART_QUERY, sent
 *     by `Agent.stop({ restart })` for `upgrade-model`): while it is down its
 *     member may be declared failed, but its departed is held back for the
 *     grace it asked (bounded), and never happens if it is back in time
 *     (alive with a newer incarnation), so related charms see no departed
 *     and joined again for an agent restart;
 *   - a unit removed for good (the `rz.gone` event sent by `remove-unit`)
 *     -> once it has departed, forgetUnit: its links and departed entries
 *     are garbage-collected, and it is never joined again even if a stale
 *     member entry of it lingers in the mesh.
 * Peer relations are implicit: every peers endpoint of the charm relates the
 * units of its service among themselves.
 * Reconciliation is level-triggered: it compares the wanted state (declarations
 * and membership) with the committed relation state and submits what differs;
 * member events and new declarations only schedule another pass. So a
 * restart, a missed event or a failed submission is repaired by the next pass.
 */
import type { Engine } from '@rhizome/engine';
import type { GossipNode, IncomingQuery, Member, UserEvent } from '@rhizome/gossip';
import { asEndpointState, checkRelation, type CharmMetadata, type RelationManager } from '@rhizome/relations';
import { AgentError } from '../errors';
import type { Logger } from '../log/logger';
import type { Declaration, DurableState } from '../state/durable-state';
import { metadataFromTags, serviceOf } from './tags';
import { parseEndpointRef, relationIdOf, type EndpointRef } from './relation-id';

export { parseEndpointRef, relationIdOf, type EndpointRef };

/** Gossip user event carrying one declaration. */
export const DECLARATION_EVENT = 'rz.rel';
/** Gossip user event naming a unit removed for good (`rhizome remove-unit`): payload `{ unit }`. */
export const UNIT_GONE_EVENT = 'rz.gone';
/** Units remembered as gone (bounded: the oldest are dropped; by then their entries were forgotten). */
const MAX_GONE = 1_024;
const UNIT_RE = /^[a-z][a-z0-9-]{0,62}\/\d{1,6}$/;
/** Gossip query answered with every declaration known. */
export const DECLARATIONS_QUERY = 'rz.rels';
/** Gossip query a unit sends before it stops for a restart: payload `{ unit, graceMs }`; peers answer `true` once they hold back its departed. */
export const RESTART_QUERY = 'rz.restart';
/** The longest a peer holds back the departed of a unit restarting (a unit that asks for more gets this). */
export const MAX_RESTART_GRACE_MS = 120_000;

export interface RelationDirectoryOptions {
  readonly unit: string;
  readonly service: string;
  readonly metadata: CharmMetadata;
  readonly node: GossipNode;
  readonly state: DurableState;
  readonly manager: RelationManager;
  readonly engine: Engine;
  readonly log: Logger;
  /** How long after start a unit absent from the mesh is still assumed to be on its way (not departed). */
  readonly absentGraceMs?: number;
  /** Period of the anti-entropy query. */
  readonly syncIntervalMs?: number;
}

export const DEFAULT_RELATION_DIRECTORY_OPTIONS = Object.freeze({
  // Long enough for a restarted agent's join to bring the full member list.
  absentGraceMs: 10_000,
  // User events reach everyone alive; this only repairs what a down agent missed.
  syncIntervalMs: 10_000,
});

export interface RelationView {
  readonly id: string;
  readonly endpoint: string;
  readonly remoteService: string;
  readonly remoteEndpoint: string;
  readonly peer: boolean;
  /** False while the remote service's metadata is unknown (no member seen yet). */
  readonly established: boolean;
  readonly units: readonly { unit: string; version: number; incarnation: number; status: string }[];
  readonly departed: readonly string[];
}

function isDeclaration(v: unknown): v is Declaration {
  const d = v as Declaration | null;
  return (
    d !== null &&
    typeof d === 'object' &&
    typeof d.id === 'string' &&
    typeof d.a?.service === 'string' &&
    typeof d.a?.endpoint === 'string' &&
    typeof d.b?.service === 'string' &&
    typeof d.b?.endpoint === 'string' &&
    typeof d.removed === 'boolean' &&
    typeof d.stamp === 'number' &&
    typeof d.origin === 'string' &&
    d.id === relationIdOf(d.a, d.b)
  );
}

const live = (m: Member): boolean => m.status === 'alive' || m.status === 'suspect';

export class RelationDirectory {
  private readonly o: RelationDirectoryOptions;
  private readonly absentGraceMs: number;
  private readonly syncIntervalMs: number;
  private readonly startedAt = Date.now();
  private readonly offs: Array<() => void> = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private running = false;
  private again = false;
  private passes: Promise<void> = Promise.resolve();
  private stopped = false;
  private lastStamp = 0;
  /** Problems (e.g. an incompatible relation) already logged, to log each once. */
  private readonly reported = new Set<string>();
  /** Units removed for good, in arrival order (see UNIT_GONE_EVENT). */
  private readonly gone = new Set<string>();
  /** Last problem per relation id, for status. */
  readonly problems = new Map<string, string>();
  /** Units that said they stop for a restart: until when their departed is held back, and their incarnation then. */
  private readonly restarting = new Map<string, { until: number; incarnation: number }>();

  constructor(options: RelationDirectoryOptions) {
    this.o = options;
    this.absentGraceMs = options.absentGraceMs ?? DEFAULT_RELATION_DIRECTORY_OPTIONS.absentGraceMs;
    this.syncIntervalMs = options.syncIntervalMs ?? DEFAULT_RELATION_DIRECTORY_OPTIONS.syncIntervalMs;
  }

  start(): void {
    const { node } = this.o;
    this.offs.push(
      node.on('user-event', (e: UserEvent) => {
        if (e.name === DECLARATION_EVENT) void this.learn([e.payload]);
        if (e.name === UNIT_GONE_EVENT) this.unitGone(e.payload);
      }),
      node.onQuery(DECLARATIONS_QUERY, () => this.o.state.declarations()),
      node.onQuery(RESTART_QUERY, (q) => this.restartNotice(q)),
    );
    for (const ev of ['member-join', 'member-update', 'member-failed', 'member-leave', 'member-reap'] as const) {
      this.offs.push(node.on(ev, () => this.schedule()));
    }
    this.timer = setInterval(() => {
      void this.syncFromPeers();
      this.schedule();
    }, this.syncIntervalMs);
    this.timer.unref();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const off of this.offs.splice(0)) off();
    // A pass may wait on an engine in error; stop() of the engine releases it.
  }

  /**
   * Tells every live peer that this unit stops for a restart now, so that
   * they hold back its departed for `graceMs`; resolves with the peers that
   * answered, once all have (or after `waitMs`).
   */
  async announceRestart(graceMs: number, waitMs = 2_000): Promise<string[]> {
    const { node, unit } = this.o;
    if (!node.running) return [];
    const others = node.members().filter((m) => m.name !== unit && live(m)).map((m) => m.name);
    const answered = new Set<string>();
    if (others.length === 0) return [];
    for await (const e of node.query(RESTART_QUERY, { unit, graceMs }, { timeout: waitMs })) {
      if (e.type === 'response' && e.payload === true) answered.add(e.from);
      if (others.every((o) => answered.has(o))) break;
    }
    return [...answered];
  }

  /** A peer's RESTART_QUERY: a unit speaks only for itself; the grace is bounded. */
  private restartNotice(q: IncomingQuery): unknown {
    const p = q.payload as { unit?: unknown; graceMs?: unknown } | null;
    if (p === null || typeof p !== 'object' || p.unit !== q.from || typeof p.graceMs !== 'number' || !(p.graceMs > 0)) return undefined;
    const m = this.o.node.members().find((x) => x.name === q.from);
    if (m === undefined) return undefined;
    const graceMs = Math.min(p.graceMs, MAX_RESTART_GRACE_MS);
    this.restarting.set(q.from, { until: Date.now() + graceMs, incarnation: m.incarnation });
    // A pass when the grace ends: a unit not back by then departs.
    setTimeout(() => this.schedule(), graceMs + 50).unref();
    this.o.log.info({ member: q.from, graceMs }, `${q.from} restarts: its departed is held back while it is away`);
    return true;
  }

  /** Whether a failed member is a unit restarting within its grace (entries end when it is back, or at the grace's end). */
  private heldBack(m: Member): boolean {
    const r = this.restarting.get(m.name);
    if (r === undefined) return false;
    if (Date.now() > r.until || (m.status === 'alive' && m.incarnation > r.incarnation)) {
      this.restarting.delete(m.name);
      return false;
    }
    return m.status === 'failed';
  }

  /** Asks the peers for their declarations and merges them. */
  async syncFromPeers(): Promise<number> {
    if (this.stopped || !this.o.node.running) return 0;
    const others = this.o.node.members().filter((m) => m.name !== this.o.unit && live(m));
    if (others.length === 0) return 0;
    try {
      const result = await this.o.node.query(DECLARATIONS_QUERY, undefined, { timeout: 1_500 }).done;
      let learned = 0;
      for (const r of result.responses) if (Array.isArray(r.payload)) learned += await this.learn(r.payload);
      return learned;
    } catch (err) {
      this.o.log.debug({ err }, 'relation directory sync failed');
      return 0;
    }
  }

  /**
   * Declares a relation between two endpoints (checked first) and spreads it.
   * Relating two endpoints already related changes nothing and says so
   * (`already`): scripts may relate again safely, and an operator learns the
   * relation was there.
   */
  async relate(a: string, b: string): Promise<Declaration & { already?: true }> {
    const x = parseEndpointRef(a);
    const y = parseEndpointRef(b);
    const mx = this.metadataOf(x.service);
    const my = this.metadataOf(y.service);
    try {
      checkRelation({ service: x.service, endpoint: x.endpoint, metadata: mx }, { service: y.service, endpoint: y.endpoint, metadata: my });
    } catch (err) {
      throw new AgentError('AGENT_ERR_RELATE', err instanceof Error ? err.message : String(err), { cause: err });
    }
    const existing = this.o.state.declarations().find((d) => d.id === relationIdOf(x, y));
    if (existing !== undefined && !existing.removed) return { ...existing, already: true };
    return this.declare(x, y, false);
  }

  /** Removes a relation (a tombstone that wins over the relate). */
  async unrelate(a: string, b: string): Promise<Declaration> {
    const x = parseEndpointRef(a);
    const y = parseEndpointRef(b);
    const id = relationIdOf(x, y);
    const existing = this.o.state.declarations().find((d) => d.id === id);
    if (!existing || existing.removed) {
      throw new AgentError('AGENT_ERR_RELATE', `${a} and ${b} are not related; 'rhizome status' lists the relations`);
    }
    return this.declare(existing.a, existing.b, true);
  }

  /** Tells the whole mesh (this agent included) that `unit` was removed for good (see UNIT_GONE_EVENT). */
  announceGone(unit: string): { unit: string } {
    if (!UNIT_RE.test(unit)) throw new AgentError('AGENT_ERR_BAD_REQUEST', `"${unit}" is not a unit name (service/N)`);
    if (unit === this.o.unit) throw new AgentError('AGENT_ERR_BAD_REQUEST', `${unit} cannot announce its own removal; ask another unit`);
    this.unitGone({ unit });
    this.o.node.sendEvent(UNIT_GONE_EVENT, { unit });
    return { unit };
  }

  /** Active declarations (tombstones left out), plus implicit peer relations of this charm. */
  active(): Declaration[] {
    return this.o.state.declarations().filter((d) => !d.removed);
  }

  /** This unit's relations as the committed state shows them. */
  views(): RelationView[] {
    const kb = this.o.engine.knowledge;
    const out: RelationView[] = [];
    for (const w of this.wanted()) {
      const state = asEndpointState(kb.relations[w.endpoint]);
      const rec = state?.relations[w.id];
      out.push({
        id: w.id,
        endpoint: w.endpoint,
        remoteService: w.remoteService,
        remoteEndpoint: w.remoteEndpoint,
        peer: w.peer,
        established: rec !== undefined,
        units: Object.entries(rec?.units ?? {})
          .sort(([p], [q]) => (p < q ? -1 : 1))
          .map(([unit, v]) => ({ unit, version: v.version, incarnation: v.incarnation, status: v.status })),
        departed: [...(rec?.departed ?? [])],
      });
    }
    return out;
  }

  /** Runs a reconciliation pass now (and resolves when it is done). */
  reconcileNow(): Promise<void> {
    this.schedule();
    return this.passes;
  }

  // ---- internals -----------------------------------------------------------

  private unitGone(payload: unknown): void {
    const unit = (payload as { unit?: unknown } | null)?.unit;
    if (typeof unit !== 'string' || !UNIT_RE.test(unit) || unit === this.o.unit) {
      this.o.log.warn({ payload }, `ignored a malformed ${UNIT_GONE_EVENT} event from the mesh`);
      return;
    }
    this.gone.delete(unit);
    this.gone.add(unit);
    if (this.gone.size > MAX_GONE) this.gone.delete(this.gone.values().next().value!);
    this.o.log.info({ member: unit }, `mesh: ${unit} was removed for good`);
    this.schedule();
  }

  private metadataOf(service: string): CharmMetadata {
    if (service === this.o.service) return this.o.metadata;
    const m = this.o.node.members().find((x) => serviceOf(x) === service && metadataFromTags(x) !== undefined);
    const meta = m ? metadataFromTags(m) : undefined;
    if (!meta) {
      const known = [...new Set(this.o.node.members().map(serviceOf).filter((s): s is string => s !== undefined))].sort();
      throw new AgentError('AGENT_ERR_RELATE', `no unit of service "${service}" is known to the mesh; known services: ${known.join(', ') || '(none)'}`);
    }
    return meta;
  }

  private async declare(x: EndpointRef, y: EndpointRef, removed: boolean): Promise<Declaration> {
    const stamp = Math.max(Date.now(), this.lastStamp + 1, ...this.o.state.declarations().filter((d) => d.id === relationIdOf(x, y)).map((d) => d.stamp + 1));
    this.lastStamp = stamp;
    const d: Declaration = { id: relationIdOf(x, y), a: { service: x.service, endpoint: x.endpoint }, b: { service: y.service, endpoint: y.endpoint }, removed, stamp, origin: this.o.unit };
    await this.o.state.putDeclaration(d);
    this.o.log.info({ relation: d.id, removed }, removed ? 'relation removed' : 'relation declared');
    this.o.node.sendEvent(DECLARATION_EVENT, d);
    this.schedule();
    return d;
  }

  /** Merges declarations from the mesh; returns how many changed anything. */
  private async learn(items: readonly unknown[]): Promise<number> {
    let changed = 0;
    for (const item of items) {
      if (!isDeclaration(item)) {
        this.o.log.warn({ item }, 'ignored a malformed relation declaration from the mesh');
        continue;
      }
      if (this.stopped) break;
      try {
        if (await this.o.state.putDeclaration(item)) changed++;
      } catch (err) {
        this.o.log.error({ err }, 'could not persist a relation declaration');
      }
    }
    if (changed > 0) this.schedule();
    return changed;
  }

  /** Relations this unit takes part in: declared ones involving its service, and its peer endpoints. */
  private wanted(): { id: string; endpoint: string; remoteService: string; remoteEndpoint: string; peer: boolean; removed: boolean }[] {
    const me = this.o.service;
    const out: { id: string; endpoint: string; remoteService: string; remoteEndpoint: string; peer: boolean; removed: boolean }[] = [];
    for (const ep of Object.values(this.o.metadata.endpoints)) {
      if (ep.role === 'peers') out.push({ id: relationIdOf({ service: me, endpoint: ep.name }, { service: me, endpoint: ep.name }), endpoint: ep.name, remoteService: me, remoteEndpoint: ep.name, peer: true, removed: false });
    }
    for (const d of this.o.state.declarations()) {
      if (d.a.service === me && d.b.service === me) continue; // peers: implicit above
      if (d.a.service === me) out.push({ id: d.id, endpoint: d.a.endpoint, remoteService: d.b.service, remoteEndpoint: d.b.endpoint, peer: false, removed: d.removed });
      else if (d.b.service === me) out.push({ id: d.id, endpoint: d.b.endpoint, remoteService: d.a.service, remoteEndpoint: d.a.endpoint, peer: false, removed: d.removed });
    }
    return out.filter((w) => !w.removed || asEndpointState(this.o.engine.knowledge.relations[w.endpoint])?.relations[w.id] !== undefined);
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.passes = (async () => {
      try {
        do {
          this.again = false;
          await this.pass();
        } while (this.again && !this.stopped);
      } finally {
        this.running = false;
      }
    })();
  }

  private report(key: string, message: string, err?: unknown): void {
    if (this.reported.has(`${key}:${message}`)) return;
    this.reported.add(`${key}:${message}`);
    this.o.log.warn({ relation: key, err }, message);
  }

  private async pass(): Promise<void> {
    const { node, manager, engine } = this.o;
    const members = node.members();
    const byName = new Map(members.map((m) => [m.name, m]));
    const graceOver = Date.now() - this.startedAt > this.absentGraceMs;
    for (const name of [...this.restarting.keys()]) {
      const m = byName.get(name);
      if (m === undefined) this.restarting.delete(name);
      else this.heldBack(m);
    }
    for (const w of this.wanted()) {
      if (this.stopped) return;
      try {
        const state = asEndpointState(engine.knowledge.relations[w.endpoint]);
        let rec = state?.relations[w.id];
        if (w.removed) {
          if (rec) await manager.removeRelation(w.id);
          this.problems.delete(w.id);
          continue;
        }
        if (!rec) {
          const remoteMember = members.find((m) => serviceOf(m) === w.remoteService && metadataFromTags(m) !== undefined);
          const remoteMetadata = w.peer ? this.o.metadata : remoteMember ? metadataFromTags(remoteMember) : undefined;
          if (!remoteMetadata) {
            this.problems.set(w.id, `waiting for a unit of ${w.remoteService} to appear in the mesh`);
            continue;
          }
          await manager.addRelation({ id: w.id, endpoint: w.endpoint, remoteService: w.remoteService, remoteEndpoint: w.remoteEndpoint, remoteMetadata });
          rec = asEndpointState(engine.knowledge.relations[w.endpoint])?.relations[w.id];
          if (!rec) continue;
        }
        this.problems.delete(w.id);
        // Joined: every live member of the remote service (other than this unit), all
        // queued before any is awaited, so the burst (and the units' first data) is one run.
        const joins: Promise<unknown>[] = [];
        const joinedNow = asEndpointState(engine.knowledge.relations[w.endpoint])?.relations[w.id];
        for (const m of members) {
          if (m.name === this.o.unit || serviceOf(m) !== w.remoteService || !live(m) || this.gone.has(m.name)) continue;
          if (joinedNow && !joinedNow.units[m.name]) joins.push(manager.unitJoined(w.id, m.name));
        }
        await Promise.all(joins);
        // Departed: joined units the mesh says are gone.
        const current = asEndpointState(engine.knowledge.relations[w.endpoint])?.relations[w.id];
        for (const unit of Object.keys(current?.units ?? {})) {
          const m = byName.get(unit);
          const gone = m ? (m.status === 'failed' && !this.heldBack(m)) || m.status === 'left' || this.gone.has(unit) : graceOver;
          if (gone) await manager.unitDeparted(w.id, unit);
        }
        // Reaped: units removed for good, once departed, leave no link or departed entry behind.
        for (const unit of this.gone) await manager.forgetUnit(w.id, unit);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        this.problems.set(w.id, message);
        this.report(w.id, `relation ${w.id}: ${message}`, err);
      }
    }
  }
}
