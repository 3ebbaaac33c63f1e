/**
 * Changes to this unit's own data on an endpoint, as a pure function of the
 * endpoint state: the endpoint-wide bag and the per-relation overlays
 * (Juju's `relation-set -r`), with the version bookkeeping state.ts
 * describes. relation.ts stages the result in the run's transaction; the
 * link sender later queues a message on exactly the relations whose
 * `localVersion` moved past what they last queued.
 */
import { jsonEqual, type JsonObject } from '@rhizome/engine';
import { effectiveLocal, type EndpointState, type RelationRecord } from '../state';

export interface LocalChange {
  /** The new endpoint-wide bag (undefined = unchanged). */
  readonly wide?: JsonObject;
  /** A new overlay for one relation (`{}` drops it). */
  readonly overlay?: { readonly relationId: string; readonly keys: JsonObject };
}

/**
 * The endpoint state after the change, and the relations whose effective
 * bag changed; undefined when nothing changes (publishing identical data is
 * not a change). Every change bumps the endpoint's counter once; each
 * relation whose effective bag changed takes the new counter value as its
 * version, every other relation keeps the version it had (written out, so
 * it no longer follows the counter).
 */
export function withLocalChange(s: EndpointState, change: LocalChange): { state: EndpointState; changed: string[] } | undefined {
  const wide = change.wide ?? s.local.bag;
  const target = change.overlay;
  const overlayOf = (id: string, rel: RelationRecord): JsonObject => (target?.relationId === id ? target.keys : (rel.overlay ?? {}));
  const wideChanged = !jsonEqual(wide, s.local.bag);
  const overlayChanged = target !== undefined && !jsonEqual(target.keys, s.relations[target.relationId]?.overlay ?? {});
  if (!wideChanged && !overlayChanged) return undefined;
  const version = s.local.version + 1;
  const changed: string[] = [];
  const relations: Record<string, RelationRecord> = {};
  for (const [id, rel] of Object.entries(s.relations)) {
    const before = effectiveLocal(s, id)!;
    const overlay = overlayOf(id, rel);
    const after = { ...wide, ...overlay };
    const moved = !jsonEqual(before.bag, after);
    if (moved) changed.push(id);
    const { overlay: _dropped, ...rest } = rel;
    relations[id] = { ...rest, ...(Object.keys(overlay).length > 0 ? { overlay } : {}), localVersion: moved ? version : before.version };
  }
  return { state: { ...s, local: { bag: wide, version }, relations }, changed: changed.sort() };
}
