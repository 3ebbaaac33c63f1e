/**
 * Finding relations and their joined units in the committed knowledge base.
 * The relation manager (manager.ts), the link sender (link-sender.ts) and
 * the link receiver (link-receiver.ts) all look relations up here, always
 * in the knowledge base as it is when they look, never in a cached copy.
 */
import type { KnowledgeBase } from '@rhizome/engine';
import { asEndpointState, type EndpointState, type RelationRecord } from '../state';

/** A relation of this unit, with the endpoint state that holds it. */
export interface RelationRef {
  readonly relationId: string;
  readonly endpoint: string;
  readonly state: EndpointState;
  readonly relation: RelationRecord;
}

export function findRelation(kb: KnowledgeBase, relationId: string): RelationRef | undefined {
  for (const [endpoint, raw] of Object.entries(kb.relations)) {
    const state = asEndpointState(raw);
    const relation = state?.relations[relationId];
    if (state && relation) return { relationId, endpoint, state, relation };
  }
  return undefined;
}

/** Calls `fn` for every joined remote unit of every relation, i.e. for every live link. */
export function forEachJoined(kb: KnowledgeBase, fn: (ref: RelationRef, unit: string, relationId: string) => void): void {
  for (const [endpoint, raw] of Object.entries(kb.relations)) {
    const state = asEndpointState(raw);
    if (!state) continue;
    for (const [relationId, relation] of Object.entries(state.relations)) {
      for (const unit of Object.keys(relation.units)) fn({ relationId, endpoint, state, relation }, unit, relationId);
    }
  }
}
