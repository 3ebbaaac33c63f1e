/**
 * The shape of relation state in the knowledge base, and the pure functions
 * that read and change it. packages/relations owns `kb.relations[endpoint]`:
 *
 *   kb.relations['namenode'] = {
 *     format: 1, interface: 'dfs-slave', interfaceVersion: '1.0.0',
 *     role: 'requires', unit: 'hdfs-datanode/0', incarnation: 1763800000000,
 *     local: { bag: { address: '10.0.0.7' }, version: 3 },   // this unit's bag, endpoint-wide
 *     app:   { bag: {...}, version: 2, writer: 'x/0', inc },  // peers only: the leader's bag
 *     relations: {
 *       'rel-1': { remoteService: 'hdfs-namenode', remoteEndpoint: 'datanode',
 *                  units: { 'hdfs-namenode/0': { bag, incarnation, version, status, missingKeys, invalidKeys, problems, ifaceVersion } },
 *                  departed: [],
 *                  overlay: { port: 8021 }, localVersion: 3 } } }   // optional: this relation's own keys
 *
 * Per-relation data (Juju's `relation-set -r`). What a remote unit on
 * relation R receives is R's *effective* bag: `local.bag` overlaid with
 * `relations[R].overlay`. `local.version` is the endpoint's one version
 * counter: every committed change of this unit's data on the endpoint,
 * endpoint-wide or per relation, bumps it. `relations[R].localVersion` is
 * the counter value at which R's effective bag last changed, so each
 * relation's bag versions are a strictly increasing subsequence of the
 * counter (receivers need nothing new), and a change that leaves R's
 * effective bag alone (a key R overrides, another relation's overlay) is
 * never sent on R. A relation without `localVersion` (no per-relation write
 * since it was created, or state written before this existed) tracks the
 * endpoint-wide bag: its version is `local.version` (see effectiveLocal).
 *
 *   kb.relations['@links'] = { 'rel-1|hdfs-namenode/0': { epoch: 1763800000000, applied: 17 } }
 *   kb.relations['@out/rel-1'] = { 'hdfs-namenode/0': { epoch, bagInc, nextSeq: 18, queuedVersion: 3, ..., outbox: [...] } }
 *
 * `@links` is the receiving side of every link (what was applied), `@out/R`
 * the sending side of relation R's links (SendRecord, send-record.ts: numbering and the
 * messages not known to be acknowledged), one key per relation so a commit
 * that queues on R rewrites R's records only. Both are written in the run
 * whose commit they describe (internal/link-sender.ts).
 *
 * Bag versions are pairs (incarnation, version). The incarnation is stamped
 * (wall-clock ms) when an endpoint's state is created, so a unit that lost
 * its knowledge base and starts over at version 1 still publishes versions
 * that order after everything it published before. Link sequence numbers
 * count within a link epoch, stamped the same way by the sender when it
 * creates the link's record (link-store.ts).
 *
 * Invariants:
 *   - A unit's view of a remote bag only moves forward: it is replaced by a
 *     bag with a higher (incarnation, version), never an older one.
 *   - `@links[link].applied` (the last link sequence number applied) is
 *     written in the same transaction as the bag it brought, so "applied"
 *     and "recorded as applied" can never disagree, whatever crashes.
 *   - Link bookkeeping lives under its own key so that recording a sequence
 *     number (which changes no data a handler reads) does not bump the
 *     `@rel/<endpoint>` token and re-run fact-only handlers.
 *   - `status` of a view is computed from the interface schema when the bag
 *     is applied: the relation model (which must be pure and schema-free)
 *     only reads it.
 */
import { jsonEqual, type Json, type JsonObject } from '@rhizome/engine';
import type { BagStatus, BagValidation } from './interface';
import type { EndpointRole } from './metadata';

/** The kb.relations key holding per-link receive bookkeeping. Not an endpoint name (endpoints cannot start with "@"). */
export const LINKS_KEY = '@links';

export interface VersionedBag {
  readonly bag: JsonObject;
  /** 0 = never published. Increases by one per committed change. */
  readonly version: number;
}

export interface AppBag extends VersionedBag {
  /** The unit that wrote this version (the leader at the time). */
  readonly writer: string;
  /** The writer's endpoint incarnation: breaks ties between equal versions written before and after it lost its state. */
  readonly inc: number;
}

/** Orders application bags: version, then the writer's incarnation, then the writer (higher unit name wins a tie). */
export function compareAppBags(a: AppBag, b: AppBag): number {
  if (a.version !== b.version) return a.version - b.version;
  if (a.inc !== b.inc) return a.inc - b.inc;
  return a.writer === b.writer ? 0 : compareUnits(a.writer, b.writer);
}

export interface UnitView extends VersionedBag {
  /** Incarnation of the remote endpoint state that published `version`. */
  readonly incarnation: number;
  readonly status: BagStatus;
  readonly missingKeys: readonly string[];
  readonly invalidKeys: readonly string[];
  readonly problems: readonly string[];
  /** The interface version the remote unit last sent (absent: none sent, an older agent). `status` is `incompatible` when its major differs from ours. */
  readonly ifaceVersion?: string;
}

export interface RelationRecord {
  readonly remoteService: string;
  readonly remoteEndpoint: string;
  /** Remote units that joined and have not departed, with this unit's view of their bags. */
  readonly units: Readonly<Record<string, UnitView>>;
  /** Remote units that departed since the relation was established. */
  readonly departed: readonly string[];
  /** This unit's keys for this relation only, over the endpoint-wide bag (`relation-set -r`). */
  readonly overlay?: JsonObject;
  /** The endpoint's version counter when this relation's effective bag last changed; absent = `local.version`. */
  readonly localVersion?: number;
}

export interface EndpointState {
  readonly format: 1;
  readonly interface: string;
  readonly interfaceVersion: string;
  readonly role: EndpointRole;
  /** The local unit, e.g. `hdfs-datanode/0`. */
  readonly unit: string;
  /** When this state was created (ms); orders this unit's bag versions across a loss of its knowledge base. 0 until a relation is created. */
  readonly incarnation: number;
  /** This unit's endpoint-wide bag (published on every relation, under each relation's overlay); `version` counts every change on the endpoint. */
  readonly local: VersionedBag;
  /** Peers only: the application-level bag (written by the leader). */
  readonly app?: AppBag;
  readonly relations: Readonly<Record<string, RelationRecord>>;
}

export interface LinkReceiveState {
  /** The sender's link epoch these sequence numbers belong to (link-store.ts). */
  readonly epoch: number;
  /** Last link sequence number applied (0 = none). */
  readonly applied: number;
}

export type LinksState = Readonly<Record<string, LinkReceiveState>>;


/** The id of the link from `remoteUnit` on relation `relationId`. */
export function linkId(relationId: string, remoteUnit: string): string {
  return `${relationId}|${remoteUnit}`;
}

export const EMPTY_BAG: VersionedBag = Object.freeze({ bag: Object.freeze({}), version: 0 });

/**
 * What remote units on `relationId` receive from this unit: the
 * endpoint-wide bag overlaid with the relation's own keys, at the version
 * it last changed. Undefined if the endpoint has no such relation.
 */
export function effectiveLocal(state: EndpointState, relationId: string): VersionedBag | undefined {
  const rel = state.relations[relationId];
  if (!rel) return undefined;
  const bag = rel.overlay && Object.keys(rel.overlay).length > 0 ? { ...state.local.bag, ...rel.overlay } : state.local.bag;
  return { bag, version: rel.localVersion ?? state.local.version };
}

/** Whether a value is relation state this package wrote. */
export function isEndpointState(state: unknown): state is EndpointState {
  if (state === null || typeof state !== 'object' || Array.isArray(state)) return false;
  const s = state as { format?: unknown; relations?: unknown };
  return s.format === 1 && typeof s.relations === 'object' && s.relations !== null;
}

/** Reads an endpoint's state, or undefined if it is not relation state this package wrote. */
export function asEndpointState(state: Json | undefined): EndpointState | undefined {
  return isEndpointState(state) ? state : undefined;
}

export function newEndpointState(init: { interface: string; interfaceVersion: string; role: EndpointRole; unit: string; incarnation: number }): EndpointState {
  return { format: 1, interface: init.interface, interfaceVersion: init.interfaceVersion, role: init.role, unit: init.unit, incarnation: init.incarnation, local: EMPTY_BAG, relations: {} };
}

export function unitView(bag: JsonObject, incarnation: number, version: number, v: BagValidation): UnitView {
  return { bag, incarnation, version, status: v.status, missingKeys: [...v.missingKeys], invalidKeys: [...v.invalidKeys], problems: [...v.problems] };
}

/** Orders bag versions: by incarnation, then version. */
export function compareVersions(aInc: number, aVersion: number, bInc: number, bVersion: number): number {
  return aInc !== bInc ? aInc - bInc : aVersion - bVersion;
}

/** Orders unit names by service, then unit number numerically (`web/2` before `web/10`). */
export function compareUnits(a: string, b: string): number {
  const [sa = '', na = ''] = a.split('/');
  const [sb = '', nb = ''] = b.split('/');
  if (sa !== sb) return sa < sb ? -1 : 1;
  const ia = Number(na);
  const ib = Number(nb);
  if (Number.isInteger(ia) && Number.isInteger(ib) && ia !== ib) return ia - ib;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Remote units joined on any relation of the endpoint, sorted, each with its relation. */
export function joinedUnits(state: EndpointState): Array<{ unit: string; relationId: string; view: UnitView }> {
  const out: Array<{ unit: string; relationId: string; view: UnitView }> = [];
  for (const [relationId, rel] of Object.entries(state.relations)) {
    for (const [unit, view] of Object.entries(rel.units)) out.push({ unit, relationId, view });
  }
  return out.sort((x, y) => compareUnits(x.unit, y.unit) || (x.relationId < y.relationId ? -1 : x.relationId > y.relationId ? 1 : 0));
}

/**
 * The leader of a peer endpoint: the lowest live member (this unit and the
 * joined peers) in unit order. Deterministic, so every unit that sees the
 * same members agrees; when the leader departs the next lowest takes over.
 */
export function leaderOf(state: EndpointState): string {
  let leader = state.unit;
  for (const { unit } of joinedUnits(state)) if (compareUnits(unit, leader) < 0) leader = unit;
  return leader;
}

/** Keys whose values differ between two bags (added, removed or changed), sorted. */
export function changedKeys(before: JsonObject, after: JsonObject): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  const out: string[] = [];
  for (const k of keys) if (!jsonEqual(before[k], after[k])) out.push(k);
  return out.sort();
}
