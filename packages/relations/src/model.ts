/**
 * The relation facts the engine can test, evaluated over the state shape of
 * state.ts. Pure and schema-free (the engine calls it on drafts): validity
 * was decided when each remote bag was applied and is stored with it.
 *
 *   joined     some remote unit has joined and not departed
 *   departed   some remote unit departed since the relation was established
 *   available  some joined remote unit's bag satisfies the interface schema
 *   value(k)   the value of key k in the first joined unit's bag (unit order)
 *              that is not in error; invalid data never reaches a handler
 *
 * Peers: `value` also reads the application bag with the key `app.<k>`.
 */
import type { Json, RelationModel } from '@rhizome/engine';
import { asEndpointState, joinedUnits } from './state';

export const relationsModel: RelationModel = {
  evaluate(raw, query) {
    const state = asEndpointState(raw);
    if (!state) return undefined;
    const relations = Object.values(state.relations);
    switch (query.fact) {
      case 'joined':
        return relations.some((r) => Object.keys(r.units).length > 0) ? true : undefined;
      case 'departed':
        return relations.some((r) => r.departed.length > 0) ? true : undefined;
      case 'available':
        return relations.some((r) => Object.values(r.units).some((u) => u.status === 'ok')) ? true : undefined;
      case 'value': {
        const key = query.key;
        if (key === undefined) return undefined;
        if (key.startsWith('app.') && state.app) {
          const v: Json | undefined = state.app.bag[key.slice(4)];
          if (v !== undefined) return v;
        }
        for (const { view } of joinedUnits(state)) {
          if (view.status === 'invalid' || view.status === 'incompatible') continue;
          const v = view.bag[key];
          if (v !== undefined) return v;
        }
        return undefined;
      }
    }
  },
};
