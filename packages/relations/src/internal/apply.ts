/**
 * The staged changes behind each relation event, as functions of a run's
 * transaction. The relation manager passes them as the `apply` step of the
 * event it submits, so the change and the event's run commit together (or
 * not at all); the charm-author testing helper uses the very same functions.
 *
 * All of them are idempotent on the state they are given: applying a bag
 * whose (incarnation, version) is not newer than the view changes nothing, joining a unit
 * already joined changes nothing, and so on. Together with the per-link
 * `applied` sequence number written in the same transaction, that makes
 * applying a link message exactly-once even if it is submitted twice.
 */
import { asDraft, type Json, type JsonObject, type RelationDraft, type Transaction } from '@rhizome/engine';
import { RelationError } from '../errors';
import { validateBag, type BagSchema, type InterfaceDefinition } from '../interface';
import { incompatibleMessage, interfaceCompatibility, type InterfaceCompatibility } from './interface-version';
import type { EndpointRole } from '../metadata';
import {
  asEndpointState,
  changedKeys,
  isEndpointState,
  compareAppBags,
  LINKS_KEY,
  linkId,
  newEndpointState,
  unitView,
  compareVersions,
  type AppBag,
  type EndpointState,
  type LinkReceiveState,
  type LinksState,
  type RelationRecord,
  type UnitView,
} from '../state';
import { asSendRecords, outboxKey } from '../send-record';

export interface RelationInit {
  readonly endpoint: string;
  readonly relationId: string;
  readonly remoteService: string;
  readonly remoteEndpoint: string;
  readonly role: EndpointRole;
  readonly interface: { readonly name: string; readonly version: string };
  /** The local unit. */
  readonly unit: string;
  /** Stamp for a newly created endpoint state (see state.ts); ignored if the state already has one. */
  readonly incarnation: number;
}

/** The role of the other side of an endpoint with this role. */
export function remoteRole(role: EndpointRole): EndpointRole {
  return role === 'provides' ? 'requires' : role === 'requires' ? 'provides' : 'peers';
}

/** What remote data on an endpoint is checked against. */
export interface RemoteSchemas {
  /** The schema of the bags the remote units publish. */
  readonly remote: BagSchema;
  /** Peers: the schema of the application bag. */
  readonly app: BagSchema;
  /** The interface this unit speaks (its registered definition): remote versions are checked against it. */
  readonly iface: { readonly name: string; readonly version: string };
}

export function remoteSchemas(iface: InterfaceDefinition, role: EndpointRole): RemoteSchemas {
  return { remote: iface.schemaFor(remoteRole(role)), app: iface.schemas.app, iface: { name: iface.name, version: iface.version } };
}

function endpointState(tx: Transaction, endpoint: string): EndpointState | undefined {
  return asEndpointState(tx.relationState(endpoint));
}

/** Changes an endpoint state the caller found in the transaction (so the draft exists). */
function updateEndpoint(tx: Transaction, endpoint: string, recipe: (d: RelationDraft<EndpointState>) => void): void {
  tx.updateRelationState<EndpointState>(endpoint, (d) => {
    if (d === undefined) throw new RelationError('REL_ERR_UNKNOWN_ENDPOINT', `endpoint "${endpoint}" has no relation state to change`);
    recipe(d);
  });
}

/** Changes a relation record the caller found in the transaction. */
function updateRelation(tx: Transaction, endpoint: string, relationId: string, recipe: (r: RelationDraft<RelationRecord>) => void): void {
  updateEndpoint(tx, endpoint, (d) => {
    const r = d.relations[relationId];
    if (r === undefined) throw new RelationError('REL_ERR_UNKNOWN_RELATION', `endpoint "${endpoint}" has no relation "${relationId}" to change`);
    recipe(r);
  });
}

/** Changes the link receive positions, which exist (the caller found them). */
function updateLinks(tx: Transaction, recipe: (d: RelationDraft<LinksState>) => void): void {
  tx.updateRelationState<LinksState>(LINKS_KEY, (d) => {
    if (d !== undefined) recipe(d);
  });
}

/** Creates the relation record (and the endpoint state if needed). Returns false if it already existed. */
export function stageRelationCreated(tx: Transaction, init: RelationInit): boolean {
  const existing = endpointState(tx, init.endpoint);
  if (existing?.relations[init.relationId] && existing.unit === init.unit && existing.incarnation > 0) return false;
  const record: RelationRecord = { remoteService: init.remoteService, remoteEndpoint: init.remoteEndpoint, units: {}, departed: [] };
  tx.updateRelationState<EndpointState>(init.endpoint, (draft) => {
    if (draft === undefined || !isEndpointState(draft)) {
      const fresh = newEndpointState({ interface: init.interface.name, interfaceVersion: init.interface.version, role: init.role, unit: init.unit, incarnation: init.incarnation });
      return { ...fresh, relations: { [init.relationId]: record } };
    }
    draft.unit = init.unit;
    if (!(draft.incarnation > 0)) draft.incarnation = init.incarnation;
    draft.relations[init.relationId] ??= asDraft(record);
    return undefined;
  });
  return true;
}

/** The view a remote unit has right after it joined: nothing published yet. */
function joinedView(schemas: RemoteSchemas): UnitView {
  return unitView({}, 0, 0, validateBag(schemas.remote, {}));
}

/**
 * The endpoint state as it will be once `unit` joined `relationId` (itself
 * when the unit is joined already, or the relation is unknown): for
 * previewing the first data of a unit whose `joined` is queued in the
 * engine, not run yet (the two are applied together, see link-receiver.ts).
 */
export function stateAfterJoin(state: EndpointState, relationId: string, unit: string, schemas: RemoteSchemas): EndpointState {
  const rel = state.relations[relationId];
  if (!rel || rel.units[unit]) return state;
  return { ...state, relations: { ...state.relations, [relationId]: { ...rel, units: { ...rel.units, [unit]: joinedView(schemas) } } } };
}

/** Adds a remote unit (with an empty view). Returns false if it was already joined or the relation is unknown. */
export function stageUnitJoined(tx: Transaction, endpoint: string, relationId: string, unit: string, schemas: RemoteSchemas): boolean {
  const s = endpointState(tx, endpoint);
  const rel = s?.relations[relationId];
  if (!s || !rel || rel.units[unit]) return false;
  const view = joinedView(schemas);
  updateRelation(tx, endpoint, relationId, (r) => {
    r.units[unit] = asDraft(view);
    r.departed = r.departed.filter((u) => u !== unit);
  });
  return true;
}

export interface RemoteBagUpdate {
  readonly endpoint: string;
  readonly relationId: string;
  readonly unit: string;
  readonly bag: JsonObject;
  /** The sender's endpoint incarnation and bag version. */
  readonly incarnation: number;
  readonly version: number;
  readonly app?: AppBag;
  /** The sender's interface version (undefined: an older agent, treated as compatible). */
  readonly ifaceVersion?: string;
}

/**
 * Whether an update replaces a view (undefined: it does not), with the
 * verdict on the sender's interface version: compatible, the view takes its
 * bag; incompatible, the view is emptied and marked so (its bag is not data
 * this unit can read). Bags only move
 * forward; an update at the view's own version replaces it only when it
 * changes the verdict on the sender's interface version (the sender's
 * charm was upgraded or downgraded without publishing anything new).
 */
function viewReplacement(view: UnitView, u: RemoteBagUpdate, localVersion: string | undefined): { compat: InterfaceCompatibility } | undefined {
  const order = compareVersions(u.incarnation, u.version, view.incarnation, view.version);
  if (order < 0) return undefined;
  const compat: InterfaceCompatibility = localVersion === undefined ? { compatible: true } : interfaceCompatibility(u.ifaceVersion, localVersion);
  if (order > 0) return { compat };
  const wasIncompatible = view.status === 'incompatible';
  if (!wasIncompatible && compat.compatible) return undefined;
  if (wasIncompatible && !compat.compatible && view.ifaceVersion === compat.remote) return undefined;
  return { compat };
}

/**
 * The keys an update would change in the current view, without staging it:
 * [] when the update is stale or identical (bags only move forward).
 * App-bag keys are reported as `app.<key>`. `iface` is the interface this
 * unit speaks (RemoteSchemas.iface); without it the sender counts as compatible.
 */
export function previewRemoteBag(state: unknown, u: RemoteBagUpdate, iface?: RemoteSchemas['iface']): string[] {
  const s = isEndpointState(state) ? state : undefined;
  const view = s?.relations[u.relationId]?.units[u.unit];
  if (!s || !view) return [];
  const replacement = viewReplacement(view, u, iface?.version);
  if (replacement && !replacement.compat.compatible) return changedKeys(view.bag, {});
  const keys = replacement ? changedKeys(view.bag, u.bag) : [];
  if (u.app && s.role === 'peers' && appIsNewer(u.app, s.app)) {
    for (const k of changedKeys(s.app?.bag ?? {}, u.app.bag)) keys.push(`app.${k}`);
  }
  return keys;
}

function appIsNewer(candidate: AppBag, current: AppBag | undefined): boolean {
  return !current || compareAppBags(candidate, current) > 0;
}

/**
 * Replaces a remote unit's view with a newer bag, validated against the
 * remote side's schema (an invalid bag is stored with its status, so it is
 * reported, and the relation is not `available`). From a sender whose
 * interface major differs from ours the bag is not applied: the view is
 * emptied and marked `incompatible` (reported the same way), and a peers
 * app bag it carries is ignored. Returns the changed keys.
 */
export function stageRemoteBag(tx: Transaction, u: RemoteBagUpdate, schemas: RemoteSchemas): string[] {
  const s = endpointState(tx, u.endpoint);
  const view = s?.relations[u.relationId]?.units[u.unit];
  if (!s || !view) return [];
  const keys = previewRemoteBag(s, u, schemas.iface);
  const replacement = viewReplacement(view, u, schemas.iface.version);
  const compatible = replacement?.compat.compatible ?? true;
  const newerApp = compatible && u.app !== undefined && s.role === 'peers' && appIsNewer(u.app, s.app) && schemas.app.partial().safeParse(u.app.bag).success;
  if (!replacement && !newerApp) return [];
  const next = replacement === undefined ? undefined : remoteView(u, schemas, replacement.compat);
  updateEndpoint(tx, u.endpoint, (d) => {
    const r = d.relations[u.relationId];
    if (next && r) r.units[u.unit] = asDraft(next);
    if (newerApp && u.app) d.app = asDraft({ bag: u.app.bag, version: u.app.version, writer: u.app.writer, inc: u.app.inc });
  });
  return newerApp ? keys : keys.filter((k) => !k.startsWith('app.'));
}

function remoteView(u: RemoteBagUpdate, schemas: RemoteSchemas, compat: InterfaceCompatibility): UnitView {
  const remoteVersion = u.ifaceVersion !== undefined ? { ifaceVersion: u.ifaceVersion } : {};
  if (compat.compatible) return { ...unitView(u.bag, u.incarnation, u.version, validateBag(schemas.remote, u.bag)), ...remoteVersion };
  const problem = incompatibleMessage(u.unit, schemas.iface.name, compat.remote, compat.local);
  return { ...unitView({}, u.incarnation, u.version, { status: 'incompatible', missingKeys: [], invalidKeys: [], problems: [problem] }), ifaceVersion: compat.remote };
}

/** Removes a remote unit's view and records it as departed. Returns false if it was not joined. */
export function stageUnitDeparted(tx: Transaction, endpoint: string, relationId: string, unit: string): boolean {
  const rel = endpointState(tx, endpoint)?.relations[relationId];
  if (!rel || !rel.units[unit]) return false;
  updateRelation(tx, endpoint, relationId, (r) => {
    delete r.units[unit];
    if (!r.departed.includes(unit)) r.departed.push(unit);
  });
  return true;
}

/**
 * Forgets a departed remote unit for good (the operator removed it): drops it
 * from the relation's departed list and drops the link's receive position.
 * Returns false if there was nothing to forget. A unit still joined is left
 * alone: it must depart first, so its departed handlers run.
 */
export function stageUnitReaped(tx: Transaction, endpoint: string, relationId: string, unit: string): boolean {
  const rel = endpointState(tx, endpoint)?.relations[relationId];
  if (!rel || rel.units[unit]) return false;
  const id = linkId(relationId, unit);
  const links = tx.relationState(LINKS_KEY) as LinksState | undefined;
  const hasPosition = links !== undefined && links !== null && typeof links === 'object' && id in links;
  if (!rel.departed.includes(unit) && !hasPosition) return false;
  if (rel.departed.includes(unit)) {
    updateRelation(tx, endpoint, relationId, (r) => {
      r.departed = r.departed.filter((u) => u !== unit);
    });
  }
  if (hasPosition) {
    updateLinks(tx, (d) => {
      delete d[id];
    });
  }
  return true;
}

/** Drops the send record of the link to `unit` on `relationId` (the unit is forgotten). Returns whether there was one. */
export function stageSendRecordDropped(tx: Transaction, relationId: string, unit: string): boolean {
  const key = outboxKey(relationId);
  const records = asSendRecords(tx.relationState(key));
  if (!records[unit]) return false;
  const { [unit]: _dropped, ...rest } = records;
  if (Object.keys(rest).length === 0) tx.removeRelationState(key);
  else tx.updateRelationState(key, () => rest as unknown as Json);
  return true;
}

/** Removes a relation and its link bookkeeping. Returns false if it did not exist. */
export function stageRelationBroken(tx: Transaction, endpoint: string, relationId: string): boolean {
  const s = endpointState(tx, endpoint);
  if (!s?.relations[relationId]) return false;
  updateEndpoint(tx, endpoint, (d) => {
    delete d.relations[relationId];
  });
  // Its links' send records go with it (one key per relation).
  tx.removeRelationState(outboxKey(relationId));
  const links = tx.relationState(LINKS_KEY) as LinksState | undefined;
  if (links && Object.keys(links).some((k) => k.startsWith(`${relationId}|`))) {
    updateLinks(tx, (d) => {
      for (const k of Object.keys(d)) if (k.startsWith(`${relationId}|`)) delete d[k];
    });
  }
  return true;
}

/** A link's receive position: the sender's link epoch and the last sequence number applied in it ({0, 0} if none). */
export function linkPosition(links: Json | undefined, id: string): LinkReceiveState {
  if (links === null || typeof links !== 'object' || Array.isArray(links)) return NO_POSITION;
  return (links as unknown as LinksState)[id] ?? NO_POSITION;
}

const NO_POSITION: LinkReceiveState = Object.freeze({ epoch: 0, applied: 0 });

/** Whether message (epoch, seq) is already covered by a receive position: applied, or from an older epoch. */
export function covered(pos: LinkReceiveState, epoch: number, seq: number): boolean {
  return epoch < pos.epoch || (epoch === pos.epoch && seq <= pos.applied);
}

/** Records (epoch, seq) as the last applied on a link; never moves backwards. */
export function stageLinkApplied(tx: Transaction, id: string, epoch: number, seq: number): void {
  if (covered(linkPosition(tx.relationState(LINKS_KEY), id), epoch, seq)) return;
  tx.updateRelationState<LinksState>(LINKS_KEY, (draft) => {
    if (draft === undefined) return { [id]: { epoch, applied: seq } };
    draft[id] = { epoch, applied: seq };
    return undefined;
  });
}
