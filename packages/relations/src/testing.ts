/**
 * State-transition testing for charm authors, with relations: describe the
 * endpoints (which remote units are there and what they published), fire a
 * relation event, and inspect the new facts, the data this unit published
 * and the run report. No network, no timers: one run through the engine's
 * `runScenario`, with the same staging functions the relation manager uses,
 * so remote data is validated exactly as in production.
 *
 * @example
 * const out = await runRelationScenario({
 *   handlers: datanode.handlers,
 *   unit: 'hdfs-datanode/0',
 *   facts: { 'hdfs.installed': true },
 *   endpoints: { namenode: { side: dfsSlave.requirer, relations: { 'rel-1': { remoteService: 'hdfs-namenode', units: { 'hdfs-namenode/0': {} } } } } },
 *   event: { endpoint: 'namenode', name: 'changed', unit: 'hdfs-namenode/0',
 *            data: { namenodes: ['nn0'], port: 8020, 'webhdfs-port': 50070, clustername: 'c1' } },
 * });
 * expect(out.published('namenode')).toEqual({ address: '10.0.0.7' });
 */
import {
  assertJson,
  type EngineEvent,
  type HandlerSpec,
  type Json,
  type JsonObject,
  type KnowledgeBase,
  type RelationDraft,
  type Transaction,
} from '@rhizome/engine';
import { createKnowledgeBase, runScenario, type ScenarioOutput } from '@rhizome/engine/testing';
import {
  stageRelationBroken,
  stageRelationCreated,
  stageRemoteBag,
  stageUnitDeparted,
  stageUnitJoined,
  previewRemoteBag,
  type RemoteSchemas,
} from './internal/apply';
import { departedEvent } from './internal/departing';
import { RelationError } from './errors';
import type { BagSchema, InterfaceSide } from './interface';
import { relationsModel } from './model';
import { asEndpointState, effectiveLocal, type AppBag, type EndpointState } from './state';

export interface RelationFixture {
  readonly remoteService: string;
  readonly remoteEndpoint?: string;
  /** Remote units and the bags they published (each at version 1; `{}` = joined, nothing published). */
  readonly units?: Readonly<Record<string, JsonObject>>;
  /** Remote units that departed earlier. */
  readonly departed?: readonly string[];
  /** What this unit has already published on this relation only, over the endpoint's `local` (`relation-set -r`). */
  readonly local?: JsonObject;
}

export interface EndpointFixture {
  /** This charm's side of the interface, e.g. `dfsSlave.requirer`. */
  readonly side: InterfaceSide<BagSchema, BagSchema, BagSchema>;
  /** What this unit has already published. */
  readonly local?: JsonObject;
  /** Peers: the application bag and who wrote it. */
  readonly app?: { readonly bag: JsonObject; readonly writer: string };
  readonly relations?: Readonly<Record<string, RelationFixture>>;
}

/** A relation event to fire; `relationId` may be left out when the endpoint has one relation. */
export type ScenarioRelationEvent =
  | { readonly endpoint: string; readonly name: 'joined' | 'departed'; readonly unit: string; readonly relationId?: string }
  | { readonly endpoint: string; readonly name: 'changed'; readonly unit: string; readonly relationId?: string; readonly data: JsonObject; readonly app?: JsonObject }
  | { readonly endpoint: string; readonly name: 'broken'; readonly relationId?: string };

export interface RelationScenarioInput {
  readonly handlers: readonly HandlerSpec[];
  /** The local unit, e.g. `hdfs-datanode/0` (decides peer leadership). */
  readonly unit: string;
  readonly facts?: Record<string, Json>;
  readonly endpoints?: Readonly<Record<string, EndpointFixture>>;
  /** Start from a previous output's `kb` instead of facts/endpoints (endpoints still supply the sides). */
  readonly kb?: KnowledgeBase;
  /** A relation event, or any engine event (e.g. an internal one); defaults to `start`. */
  readonly event?: ScenarioRelationEvent | EngineEvent;
  readonly maxHandlerExecutions?: number;
}

export interface RelationScenarioOutput extends ScenarioOutput {
  /** The relation state of an endpoint after the run. */
  state(endpoint: string): EndpointState | undefined;
  /**
   * This unit's endpoint-wide bag after the run; with a relation id, what
   * that relation's remote units will receive (the endpoint-wide bag under
   * the relation's own keys).
   */
  published(endpoint: string, relationId?: string): JsonObject;
  /** Peers: the application bag after the run. */
  appBag(endpoint: string): JsonObject | undefined;
}

/** The incarnation fixtures are stamped with (a fixed value keeps scenario outputs reproducible). */
export const FIXTURE_INCARNATION = 1;

/** Builds an endpoint's relation state from a fixture, validating remote bags as the relation manager does. */
export function endpointStateFromFixture(endpoint: string, unit: string, fixture: EndpointFixture): EndpointState {
  const schemas = schemasOf(fixture.side);
  let state: Json | undefined;
  const tx = scratchTransaction(endpoint, () => state, (s) => (state = s));
  const relations = fixture.relations ?? {};
  for (const [relationId, rel] of Object.entries(relations)) {
    stageRelationCreated(tx, {
      endpoint,
      relationId,
      remoteService: rel.remoteService,
      remoteEndpoint: rel.remoteEndpoint ?? endpoint,
      role: fixture.side.role,
      interface: { name: fixture.side.interface, version: fixture.side.version },
      unit,
      incarnation: FIXTURE_INCARNATION,
    });
    for (const [u, bag] of Object.entries(rel.units ?? {})) {
      stageUnitJoined(tx, endpoint, relationId, u, schemas);
      if (Object.keys(bag).length > 0) stageRemoteBag(tx, { endpoint, relationId, unit: u, bag, incarnation: FIXTURE_INCARNATION, version: 1 }, schemas);
    }
    for (const u of rel.departed ?? []) {
      stageUnitJoined(tx, endpoint, relationId, u, schemas);
      stageUnitDeparted(tx, endpoint, relationId, u);
    }
  }
  if (Object.keys(relations).length === 0) {
    state = { format: 1, interface: fixture.side.interface, interfaceVersion: fixture.side.version, role: fixture.side.role, unit, incarnation: FIXTURE_INCARNATION, local: { bag: {}, version: 0 }, relations: {} };
  }
  const s = asEndpointState(state) as EndpointState;
  // Per-relation keys, all at the fixture's version 1 (a relation without `localVersion` follows `local.version`).
  const overlays = Object.entries(relations).filter(([, rel]) => rel.local && Object.keys(rel.local).length > 0);
  const withLocal: EndpointState = {
    ...s,
    local: fixture.local || overlays.length > 0 ? { bag: fixture.local ?? {}, version: 1 } : s.local,
    relations: Object.fromEntries(Object.entries(s.relations).map(([id, rel]) => [id, relations[id]?.local && Object.keys(relations[id].local).length > 0 ? { ...rel, overlay: relations[id].local } : rel])),
    ...(fixture.app ? { app: { bag: fixture.app.bag, version: 1, writer: fixture.app.writer, inc: FIXTURE_INCARNATION } } : {}),
  };
  return withLocal;
}

/** Runs one event against a relation-aware state and returns what changed. */
export async function runRelationScenario(input: RelationScenarioInput): Promise<RelationScenarioOutput> {
  const endpoints = input.endpoints ?? {};
  const kb =
    input.kb ??
    createKnowledgeBase({
      facts: input.facts ?? {},
      relations: Object.fromEntries(Object.entries(endpoints).map(([name, f]) => [name, endpointStateFromFixture(name, input.unit, f) as unknown as Json])),
    });
  const { event, apply } = toEngineEvent(input.event, kb, endpoints);
  const out = await runScenario({
    handlers: input.handlers,
    kb,
    ...(event ? { event } : {}),
    ...(apply ? { apply } : {}),
    relationModel: relationsModel,
    ...(input.maxHandlerExecutions !== undefined ? { maxHandlerExecutions: input.maxHandlerExecutions } : {}),
  });
  const state = (endpoint: string): EndpointState | undefined => asEndpointState(out.kb.relations[endpoint]);
  return {
    ...out,
    state,
    published: (endpoint, relationId) => {
      const s = state(endpoint);
      if (relationId === undefined) return s?.local.bag ?? {};
      const local = s && effectiveLocal(s, relationId);
      if (!local) throw new RelationError('REL_ERR_UNKNOWN_RELATION', `endpoint "${endpoint}" has no relation "${relationId}" after the run; it has [${Object.keys(s?.relations ?? {}).sort().join(', ')}]`);
      return local.bag;
    },
    appBag: (endpoint) => state(endpoint)?.app?.bag,
  };
}

function schemasOf(side: InterfaceSide<BagSchema, BagSchema, BagSchema>): RemoteSchemas {
  return { remote: side.remote, app: side.app, iface: { name: side.interface, version: side.version } };
}

function isRelationScenarioEvent(e: ScenarioRelationEvent | EngineEvent): e is ScenarioRelationEvent {
  return !('kind' in e);
}

function toEngineEvent(
  e: ScenarioRelationEvent | EngineEvent | undefined,
  kb: KnowledgeBase,
  endpoints: Readonly<Record<string, EndpointFixture>>,
): { event?: EngineEvent; apply?: (tx: Transaction) => void } {
  if (e === undefined) return {};
  if (!isRelationScenarioEvent(e)) return { event: e };
  const fixture = endpoints[e.endpoint];
  if (!fixture) {
    throw new RelationError('REL_ERR_UNKNOWN_ENDPOINT', `the scenario fires an event on "${e.endpoint}" but describes no such endpoint; add it to \`endpoints\` (with its side) so remote data can be checked`);
  }
  const state = asEndpointState(kb.relations[e.endpoint]);
  const relationIds = Object.keys(state?.relations ?? {});
  const relationId = e.relationId ?? (relationIds.length === 1 ? relationIds[0] : undefined);
  if (relationId === undefined || !state?.relations[relationId]) {
    throw new RelationError('REL_ERR_UNKNOWN_RELATION', `endpoint "${e.endpoint}" has relations [${relationIds.join(', ')}]; name the one the event is for with relationId`);
  }
  const schemas = schemasOf(fixture.side);
  const rel = state.relations[relationId]!;
  const payload = { relationId, remoteService: rel.remoteService };
  switch (e.name) {
    case 'joined':
      return { event: { kind: 'relation', endpoint: e.endpoint, name: 'joined', unit: e.unit, payload }, apply: (tx) => void stageUnitJoined(tx, e.endpoint, relationId, e.unit, schemas) };
    case 'departed':
      // The same event the relation manager submits: it carries the unit's last bag (departing.ts).
      return { event: departedEvent(state, e.endpoint, relationId, e.unit), apply: (tx) => void stageUnitDeparted(tx, e.endpoint, relationId, e.unit) };
    case 'broken':
      return { event: { kind: 'relation', endpoint: e.endpoint, name: 'broken', payload }, apply: (tx) => void stageRelationBroken(tx, e.endpoint, relationId) };
    case 'changed': {
      const view = rel.units[e.unit];
      const version = (view?.version ?? 0) + 1;
      const app: AppBag | undefined = e.app ? { bag: e.app, version: (state.app?.version ?? 0) + 1, writer: e.unit, inc: FIXTURE_INCARNATION } : undefined;
      const update = { endpoint: e.endpoint, relationId, unit: e.unit, bag: e.data, incarnation: view?.incarnation || FIXTURE_INCARNATION, version, ...(app ? { app } : {}) };
      const keys = view ? previewRemoteBag(state, update) : Object.keys(e.data).sort();
      return {
        event: { kind: 'relation', endpoint: e.endpoint, name: 'changed', unit: e.unit, keys, payload: { ...payload, version } },
        apply: (tx) => {
          stageUnitJoined(tx, e.endpoint, relationId, e.unit, schemas);
          stageRemoteBag(tx, update, schemas);
        },
      };
    }
  }
}

/** A transaction over one endpoint's state only, used to build fixtures with the staging functions. */
function scratchTransaction(endpoint: string, get: () => Json | undefined, set: (s: Json | undefined) => void): Transaction {
  const others = new Map<string, Json | undefined>();
  const read = (ep: string): Json | undefined => (ep === endpoint ? get() : others.get(ep));
  const write = (ep: string, v: Json | undefined): void => (ep === endpoint ? set(v) : void others.set(ep, v));
  const unsupported = (what: string) => (): never => {
    throw new RelationError('REL_ERR_OPTIONS', `${what} is not available while building a fixture`);
  };
  return {
    get: unsupported('get'),
    has: unsupported('has'),
    set: unsupported('set'),
    clear: unsupported('clear'),
    keys: unsupported('keys'),
    relationFact: (ep, f, key) => relationsModel.evaluate(read(ep), key === undefined ? { endpoint: ep, fact: f } : { endpoint: ep, fact: f, key }),
    relationState: read,
    updateRelationState: <S,>(ep: string, recipe: (draft: RelationDraft<S> | undefined) => S | void) => {
      const current = read(ep);
      // A plain copy stands in for immer's draft here (fixtures only): the recipe mutates it or returns a replacement.
      const copy = current === undefined ? undefined : (structuredClone(current) as RelationDraft<S>);
      const returned = recipe(copy);
      const next: unknown = returned === undefined ? copy : returned;
      assertJson(next, `relation state of ${ep}`);
      write(ep, next);
    },
    removeRelationState: (ep: string) => write(ep, undefined),
  };
}

// The simulated link network (loss, duplication, reordering, partitions on
// virtual time) and the boundary parser, for tests, fuzzers and benchmarks.
export { SimLinkNetwork, DEFAULT_SIM_LINK_FAULTS, type SimLinkFaults, type SimLinkNetworkOptions, type SimLinkStats } from './sim-transport';
export { parseLinkMessage, MAX_LINK_MESSAGE_BYTES, MAX_LINK_COUNTER, MAX_LINK_STAMP } from './messages';
