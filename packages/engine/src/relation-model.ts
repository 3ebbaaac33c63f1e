/**
 * Relation facts are derived from relation state, which packages/relations
 * owns and keeps in `KnowledgeBase.relations[endpoint]`. The engine only
 * needs to ask a question of that state; this interface is the question.
 * An in-memory model ships here so the engine can be tested alone.
 */
import type { Json } from './json';

export type RelationFactName =
  /** At least one remote unit has joined (and not departed). */
  | 'joined'
  /** At least one remote unit departed since the relation was established. */
  | 'departed'
  /** The remote data satisfies the endpoint's interface. */
  | 'available'
  /** The value of a key in the remote data (`key` required). */
  | 'value';

export type RelationEventName = 'joined' | 'changed' | 'departed' | 'broken';

export interface RelationFactQuery {
  readonly endpoint: string;
  readonly fact: RelationFactName;
  readonly key?: string;
}

export interface RelationModel {
  /**
   * Evaluates a relation fact against an endpoint's state (undefined when the
   * endpoint has none yet). Must be pure: the engine calls it on drafts.
   * Returns `undefined` for "not set".
   */
  evaluate(state: Json | undefined, query: RelationFactQuery): Json | undefined;
}

/**
 * The state shape of the in-memory model: remote units with their data bags.
 * `{ units: { "datanode/0": { address: "..." } }, departed: ["datanode/1"] }`
 */
export interface InMemoryRelationState {
  readonly units: Readonly<Record<string, Readonly<Record<string, Json>>>>;
  readonly departed?: readonly string[];
  /** Keys that make the relation `available` once some unit publishes all of them. */
  readonly required?: readonly string[];
}

export const inMemoryRelationModel: RelationModel = {
  evaluate(state, query) {
    if (state === undefined || state === null || typeof state !== 'object' || Array.isArray(state)) return undefined;
    const s = state as unknown as InMemoryRelationState;
    const bags = Object.values(s.units ?? {});
    switch (query.fact) {
      case 'joined':
        return bags.length > 0 ? true : undefined;
      case 'departed':
        return (s.departed?.length ?? 0) > 0 ? true : undefined;
      case 'available': {
        const required = s.required ?? [];
        return bags.some((bag) => Object.keys(bag).length > 0 && required.every((k) => bag[k] !== undefined)) ? true : undefined;
      }
      case 'value': {
        if (query.key === undefined) return undefined;
        for (const bag of bags) if (bag[query.key] !== undefined) return bag[query.key];
        return undefined;
      }
    }
  },
};
