/**
 * The last bag of a departing unit, for the run of its `departed` event
 * (Juju: `relation-get` still answers for the departing unit during
 * relation-departed, so a charm can e.g. drop its address from a config).
 *
 * Where it lives: in the `departed` event's payload, not in relation state.
 *   - The relation state describes the present: `units` are the joined
 *     units, and the staged state of a departed run already lacks the unit
 *     (`units()`/`all()` must not list it). Keeping "last bags" there would
 *     need a second map that lingers after the run (and must be cleaned up
 *     by some later run), and every reader would have to filter it by the
 *     trigger anyway. The event is what is "active for its run only".
 *   - Durability comes for free: the departure is staged in the same
 *     transaction as the handlers' run, so until that run commits, the
 *     committed knowledge base (the durable one) still holds the unit's view.
 *     A failed run rolls back and the engine retries the same event (same
 *     payload); after an agent restart the agent's level-triggered
 *     reconciliation calls `unitDeparted` again, and the payload is rebuilt
 *     from that durable view. Once the run commits, the bag is no longer
 *     needed.
 *   - The payload carries the raw bag, not a verdict: the charm's side of
 *     the interface validates it when it is read, exactly as for `all()`.
 */
import type { EngineEvent, HandlerContext, Json, JsonObject, RelationEvent, Transaction } from '@rhizome/engine';
import type { EndpointState } from '../state';

/** The last view of a departing unit's bag, as carried by the `departed` event. */
export interface DepartedBag {
  readonly bag: JsonObject;
  /** The (incarnation, version) of that bag (0, 0: the unit never published). */
  readonly incarnation: number;
  readonly version: number;
}

/** The payload of a `departed` relation event. */
export interface DepartedPayload {
  readonly relationId: string;
  readonly remoteService: string;
  /** The departing unit's last bag as this unit saw it; absent if the unit was not joined. */
  readonly last?: DepartedBag;
}

/**
 * The `departed` event for a remote unit, built from the state the
 * departure will be staged on (the committed one): it carries the unit's
 * last bag. Used by the relation manager and by `runRelationScenario`.
 */
export function departedEvent(state: EndpointState, endpoint: string, relationId: string, unit: string): RelationEvent {
  const rel = state.relations[relationId];
  const view = rel?.units[unit];
  const payload: DepartedPayload = {
    relationId,
    remoteService: rel?.remoteService ?? '',
    ...(view ? { last: { bag: view.bag, incarnation: view.incarnation, version: view.version } } : {}),
  };
  return { kind: 'relation', endpoint, name: 'departed', unit, payload: payload as unknown as Json };
}

/** The departing unit of this run on `endpoint` and its last bag, or undefined outside a run triggered by its `departed` event. */
export function departingOf(tx: Transaction, endpoint: string): { unit: string; relationId: string; last: DepartedBag } | undefined {
  // Only a handler's context knows its run's trigger; a bare transaction (fixtures) has none.
  const trigger: EngineEvent | undefined = (tx as Partial<HandlerContext>).trigger;
  if (trigger?.kind !== 'relation' || trigger.name !== 'departed' || trigger.endpoint !== endpoint || typeof trigger.unit !== 'string') return undefined;
  const p = trigger.payload;
  if (!isObject(p) || typeof p['relationId'] !== 'string' || !isObject(p['last'])) return undefined;
  const last = p['last'];
  if (!isObject(last['bag']) || typeof last['incarnation'] !== 'number' || typeof last['version'] !== 'number') return undefined;
  return { unit: trigger.unit, relationId: p['relationId'], last: { bag: last['bag'], incarnation: last['incarnation'], version: last['version'] } };
}

function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
