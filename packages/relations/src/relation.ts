/**
 * The charm-facing view of an endpoint, used inside handlers:
 *
 *   const nn = relation(ctx, 'namenode', dfsSlave.requirer);
 *   for (const { unit, data } of nn.all()) ...   // typed, validated remote bags
 *   nn.publish({ address: '10.0.0.7' });          // typed, validated local bag, on every relation
 *   nn.publish({ port: 8021 }, { relationId: 'rel-2' }); // on rel-2 only, over the endpoint-wide bag
 *
 * Everything goes through the run's transaction: reads see the staged
 * state, `publish` stages a new version of this unit's bag, and the
 * relation manager turns the committed version into link messages after
 * the run commits. A run that fails publishes nothing.
 *
 * Per relation (Juju's `relation-set -r`): `publish(data, { relationId })`
 * and `unpublish(...keys, { relationId })` write a relation's overlay; a
 * remote unit on that relation receives the endpoint-wide bag overlaid with
 * it (state.ts, local-bag.ts). Without `relationId` both write the
 * endpoint-wide bag, as they always did.
 *
 * Remote data reaches a charm only through the schema of the remote side:
 * `data()` and `all()` return only bags that satisfy it, and `errors()`
 * lists those that do not, with the offending keys. The same holds for
 * `departing()`, the last bag of the unit whose `departed` event started
 * the run (departing.ts).
 */
import type { z } from 'zod';
import { asDraft, assertJson, jsonEqual, type Json, type JsonObject, type RelationDraft, type Transaction } from '@rhizome/engine';
import { RelationError } from './errors';
import { departingOf } from './internal/departing';
import { validateBag, type BagSchema, type InterfaceDefinition, type InterfaceSide } from './interface';
import { withLocalChange, type LocalChange } from './internal/local-bag';
import { asEndpointState, compareUnits, effectiveLocal, joinedUnits, leaderOf, newEndpointState, type EndpointState } from './state';

/** What a charm may publish: the side's input type, every key optional. */
export type PublishData<S extends BagSchema> = { [K in keyof z.input<S>]?: z.input<S>[K] };

/** Names the one relation a read or write of this unit's data is about (Juju's `-r`); left out = endpoint-wide. */
export interface RelationScope {
  readonly relationId: string;
}

export interface RelationDataError {
  readonly relationId: string;
  readonly unit: string;
  /** Keys present with values the interface refuses. */
  readonly keys: readonly string[];
  readonly problems: readonly string[];
  /** Set when the unit speaks another major version of the interface (its bag is not applied; `keys` is empty). */
  readonly incompatible?: { readonly remote: string; readonly local: string };
}

export interface RemoteBag<T> {
  readonly unit: string;
  readonly relationId: string;
  readonly data: T;
}

/**
 * The last bag of the unit departing in this run, checked like `all()`
 * entries: `data` only when the bag satisfies the interface. Incomplete
 * bags (required keys missing) and invalid ones (keys the interface
 * refuses, as `errors()` reports them) come with `data: undefined`.
 */
export type DepartingBag<T> =
  | { readonly unit: string; readonly relationId: string; readonly status: 'ok'; readonly data: T }
  | { readonly unit: string; readonly relationId: string; readonly status: 'incomplete'; readonly data: undefined; readonly missingKeys: readonly string[] }
  | { readonly unit: string; readonly relationId: string; readonly status: 'invalid'; readonly data: undefined; readonly error: RelationDataError };

export interface RelationHandle<Local extends BagSchema, Remote extends BagSchema, App extends BagSchema> {
  readonly endpoint: string;
  /** Relation ids established on this endpoint. */
  relationIds(): string[];
  /** Remote units joined on any relation of the endpoint, in unit order. */
  units(): string[];
  /** A remote unit's data if it satisfies the interface, else undefined (incomplete or invalid). */
  data(unit: string): z.output<Remote> | undefined;
  /** Every remote bag that satisfies the interface, in unit order. */
  all(): RemoteBag<z.output<Remote>>[];
  /** Remote bags that violate the interface, or units speaking another major version of it (never visible through data()/all()). */
  errors(): RelationDataError[];
  /**
   * In a run started by this endpoint's `departed` event: the departing
   * unit and the last bag it published (it is no longer in units()/all()),
   * e.g. to drop its address from a config. Undefined in any other run.
   */
  departing(): DepartingBag<z.output<Remote>> | undefined;
  /**
   * This unit's bag as staged in the run: endpoint-wide, or with
   * `{ relationId }` what that relation's remote units receive (the
   * endpoint-wide bag overlaid with the relation's own keys).
   */
  local(scope?: RelationScope): PublishData<Local>;
  /**
   * Merges keys into this unit's endpoint-wide bag, or with `{ relationId }`
   * into that relation's own keys, which override the endpoint-wide ones on
   * that relation only. Validated against this side's schema (per relation:
   * the resulting effective bag). Publishing identical data is not a change.
   * An unknown relation id: REL_ERR_UNKNOWN_RELATION.
   */
  publish(data: PublishData<Local>, scope?: RelationScope): void;
  /**
   * Removes keys from this unit's endpoint-wide bag, or, with a trailing
   * `{ relationId }`, from that relation's own keys, so the relation falls
   * back to the endpoint-wide values: `unpublish('port', { relationId: 'rel-2' })`.
   */
  unpublish(...keys: Array<keyof z.input<Local> & string> | [...Array<keyof z.input<Local> & string>, RelationScope]): void;
  /** Peers: the leader among the live members (this unit and joined peers). */
  leader(): string;
  isLeader(): boolean;
  /** Peers: the application-level bag, if it satisfies the interface's app schema (keys may be missing). */
  app(): PublishData<App> | undefined;
  /** Peers: merges keys into the application bag. Only the leader may; others get REL_ERR_NOT_LEADER. */
  publishApp(data: PublishData<App>): void;
}

/**
 * The typed handle of an endpoint for this run.
 *
 * @example
 * defineHandler({
 *   name: 'configure-datanode',
 *   when: all(fact('hdfs.installed'), relationFact('namenode', 'available')),
 *   run(ctx) {
 *     const nn = relation(ctx, 'namenode', dfsSlave.requirer);
 *     const [first] = nn.all();
 *     ctx.set('hdfs.namenode', `${first!.data.namenodes[0]}:${first!.data.port}`);
 *     nn.publish({ address: '10.0.0.7', hostname: 'dn0' });
 *   },
 * });
 */
export function relation<L extends BagSchema, R extends BagSchema, A extends BagSchema>(tx: Transaction, endpoint: string, side: InterfaceSide<L, R, A>): RelationHandle<L, R, A>;
/**
 * The handle of an endpoint given the whole interface: the side is taken
 * from the endpoint's role at run time, so local and remote data are typed
 * as the union of the sides. Pass a side (`dfsSlave.requirer`) for exact
 * types, and to publish before any relation exists.
 *
 * @example
 * const nn = relation(ctx, 'namenode', dfsSlave);
 * nn.units();
 */
export function relation<P extends BagSchema, R extends BagSchema, Peer extends BagSchema, A extends BagSchema>(
  tx: Transaction,
  endpoint: string,
  iface: InterfaceDefinition<P, R, Peer, A>,
): RelationHandle<P | R | Peer, P | R | Peer, A>;
export function relation(tx: Transaction, endpoint: string, sideOrInterface: InterfaceSide<BagSchema, BagSchema, BagSchema> | InterfaceDefinition): RelationHandle<BagSchema, BagSchema, BagSchema> {
  if ('provider' in sideOrInterface) {
    const state = asEndpointState(tx.relationState(endpoint));
    const iface = sideOrInterface;
    if (!state) {
      // No relation yet: reads are empty; writing needs to know the side.
      return handleFor(tx, endpoint, iface.provider, `publishing on "${endpoint}" before any relation exists needs the side, e.g. relation(ctx, '${endpoint}', ${iface.name}.requirer)`);
    }
    return handleFor(tx, endpoint, state.role === 'provides' ? iface.provider : state.role === 'requires' ? iface.requirer : iface.peer, undefined);
  }
  return handleFor(tx, endpoint, sideOrInterface, undefined);
}

function handleFor<L extends BagSchema, R extends BagSchema, A extends BagSchema>(
  tx: Transaction,
  endpoint: string,
  side: InterfaceSide<L, R, A>,
  cannotWrite: string | undefined,
): RelationHandle<L, R, A> {
  const read = (): EndpointState | undefined => {
    const raw = tx.relationState(endpoint);
    const state = asEndpointState(raw);
    if (raw !== undefined && !state) {
      throw new RelationError('REL_ERR_WRONG_SIDE', `relation state of endpoint "${endpoint}" was not written by @rhizome/relations; is "${endpoint}" an endpoint of this charm?`);
    }
    if (state && (state.interface !== side.interface || state.role !== side.role)) {
      throw new RelationError(
        'REL_ERR_WRONG_SIDE',
        `endpoint "${endpoint}" ${state.role} interface "${state.interface}", but the handler reads it as ${side.role} "${side.interface}"; pass the matching side (e.g. ${state.interface}.${state.role === 'provides' ? 'provider' : state.role === 'requires' ? 'requirer' : 'peer'})`,
      );
    }
    return state;
  };
  const parseRemote = (bag: JsonObject): z.output<R> | undefined => {
    const r = side.remote.safeParse(bag);
    return r.success ? (r.data as z.output<R>) : undefined;
  };
  const write = (recipe: (d: RelationDraft<EndpointState>) => EndpointState | void): void => {
    tx.updateRelationState<EndpointState>(endpoint, (draft) => {
      if (draft === undefined) {
        // Publishing before any relation exists: keep the bag; the relation manager fills in the unit and incarnation when it creates one.
        const fresh = asDraft(newEndpointState({ interface: side.interface, interfaceVersion: side.version, role: side.role, unit: '', incarnation: 0 }));
        return recipe(fresh) ?? fresh;
      }
      return recipe(draft);
    });
  };
  const checkKeys = (schema: BagSchema, data: object, what: string): void => {
    const allowed = Object.keys(schema.shape);
    const unknown = Object.keys(data).filter((k) => !allowed.includes(k));
    if (unknown.length > 0) {
      throw new RelationError('REL_ERR_BAD_DATA', `${what} on "${endpoint}" (${side.interface} ${side.role}): unknown keys ${unknown.join(', ')}; the interface allows ${allowed.length > 0 ? allowed.join(', ') : 'no keys on this side'}`);
    }
  };
  const mergeKeys = (current: JsonObject, data: object): Record<string, Json> => {
    const next: Record<string, Json> = { ...current };
    for (const [k, v] of Object.entries(data)) {
      if (v === undefined) delete next[k];
      else next[k] = v as Json;
    }
    return next;
  };
  const checkBag = (bag: JsonObject, schema: BagSchema, what: string): void => {
    assertJson(bag, `${what} on ${endpoint}`);
    const r = schema.partial().safeParse(bag);
    if (!r.success) {
      const problems = r.error.issues.map((i) => `${i.path.map(String).join('.') || '(bag)'}: ${i.message}`);
      throw new RelationError('REL_ERR_BAD_DATA', `${what} on "${endpoint}" does not satisfy interface ${side.interface}@${side.version} (${side.role}): ${problems.join('; ')}`);
    }
  };
  const merged = (current: JsonObject, data: object, schema: BagSchema, what: string): JsonObject => {
    checkKeys(schema, data, what);
    const next = mergeKeys(current, data);
    checkBag(next, schema, what);
    return next;
  };
  /** The endpoint state, which must hold `relationId`; else REL_ERR_UNKNOWN_RELATION listing the endpoint's relations. */
  const stateWith = (relationId: unknown, what: string): EndpointState => {
    const s = read();
    if (typeof relationId === 'string' && s?.relations[relationId]) return s;
    const ids = Object.keys(s?.relations ?? {}).sort();
    throw new RelationError(
      'REL_ERR_UNKNOWN_RELATION',
      `${what} on "${endpoint}" names relation ${JSON.stringify(relationId)}, which this endpoint does not have; its relations are [${ids.join(', ')}] (relationIds(), or the relationId of an all() entry)`,
    );
  };
  /** Stages a change of this unit's data, checking every relation bag it changes against the interface. */
  const stageLocal = (s: EndpointState, change: LocalChange, what: string): void => {
    const next = withLocalChange(s, change);
    if (!next) return;
    for (const id of next.changed) checkBag(effectiveLocal(next.state, id)!.bag, side.local, `${what} (relation ${id})`);
    write(() => next.state);
  };
  const splitScope = (args: unknown[]): { keys: string[]; scope: RelationScope | undefined } => {
    const last = args[args.length - 1];
    if (last !== null && typeof last === 'object') return { keys: args.slice(0, -1) as string[], scope: last as RelationScope };
    return { keys: args as string[], scope: undefined };
  };
  const handle: RelationHandle<L, R, A> = {
    endpoint,
    relationIds: () => Object.keys(read()?.relations ?? {}).sort(),
    units: () => {
      const s = read();
      return s ? [...new Set(joinedUnits(s).map((u) => u.unit))].sort(compareUnits) : [];
    },
    data: (unit) => {
      const s = read();
      if (!s) return undefined;
      for (const u of joinedUnits(s)) if (u.unit === unit && u.view.status === 'ok') return parseRemote(u.view.bag);
      return undefined;
    },
    all: () => {
      const s = read();
      if (!s) return [];
      const out: RemoteBag<z.output<R>>[] = [];
      for (const u of joinedUnits(s)) {
        if (u.view.status !== 'ok') continue;
        const data = parseRemote(u.view.bag);
        if (data !== undefined) out.push({ unit: u.unit, relationId: u.relationId, data });
      }
      return out;
    },
    errors: () => {
      const s = read();
      if (!s) return [];
      return joinedUnits(s)
        .filter((u) => u.view.status === 'invalid' || u.view.status === 'incompatible')
        .map((u) => ({
          relationId: u.relationId,
          unit: u.unit,
          keys: u.view.invalidKeys,
          problems: u.view.problems,
          ...(u.view.status === 'incompatible' ? { incompatible: { remote: u.view.ifaceVersion ?? '?', local: side.version } } : {}),
        }));
    },
    departing: () => {
      const d = departingOf(tx, endpoint);
      if (!d) return undefined;
      read(); // The same side check as every other read.
      const { unit, relationId } = d;
      // validateBag first: it never throws (a charm's refinement might), and it names the keys at fault.
      const v = validateBag(side.remote, d.last.bag);
      const data = v.status === 'ok' ? parseRemote(d.last.bag) : undefined;
      if (data !== undefined) return { unit, relationId, status: 'ok', data };
      if (v.status === 'incomplete') return { unit, relationId, status: 'incomplete', data: undefined, missingKeys: v.missingKeys };
      return { unit, relationId, status: 'invalid', data: undefined, error: { relationId, unit, keys: v.invalidKeys, problems: v.problems } };
    },
    local: (scope) => {
      if (scope === undefined) return (read()?.local.bag ?? {}) as PublishData<L>;
      return effectiveLocal(stateWith(scope.relationId, 'local()'), scope.relationId)!.bag as PublishData<L>;
    },
    publish: (data, scope) => {
      if (scope !== undefined) {
        // Per relation: needs the relation, hence an established endpoint (whose side read() checked).
        const s = stateWith(scope.relationId, 'publish');
        checkKeys(side.local, data, 'publish');
        return stageLocal(s, { overlay: { relationId: scope.relationId, keys: mergeKeys(s.relations[scope.relationId]!.overlay ?? {}, data) } }, 'publish');
      }
      if (cannotWrite !== undefined) throw new RelationError('REL_ERR_WRONG_SIDE', cannotWrite);
      const s = read();
      const next = merged(s?.local.bag ?? {}, data, side.local, 'publish');
      if (!s) {
        // No state yet (no relation): keep the bag for when one is created.
        write((d) => void (d.local = asDraft({ bag: next, version: d.local.version + 1 })));
        return;
      }
      stageLocal(s, { wide: next }, 'publish');
    },
    unpublish: (...args) => {
      const { keys, scope } = splitScope(args);
      if (scope !== undefined) {
        const s = stateWith(scope.relationId, 'unpublish');
        const overlay: Record<string, Json> = { ...(s.relations[scope.relationId]!.overlay ?? {}) };
        for (const k of keys) delete overlay[k];
        return stageLocal(s, { overlay: { relationId: scope.relationId, keys: overlay } }, 'unpublish');
      }
      if (cannotWrite !== undefined) throw new RelationError('REL_ERR_WRONG_SIDE', cannotWrite);
      const s = read();
      if (!s || !keys.some((k) => s.local.bag[k] !== undefined)) return;
      const next: Record<string, Json> = { ...s.local.bag };
      for (const k of keys) delete next[k];
      stageLocal(s, { wide: next }, 'unpublish');
    },
    leader: () => {
      const s = read();
      if (!s || s.role !== 'peers') {
        throw new RelationError('REL_ERR_WRONG_SIDE', `leader() is for peers endpoints; "${endpoint}" is ${s ? s.role : 'not established yet'}`);
      }
      return leaderOf(s);
    },
    isLeader: () => {
      const s = read();
      return s !== undefined && s.role === 'peers' && s.unit !== '' && leaderOf(s) === s.unit;
    },
    app: () => {
      const s = read();
      if (!s?.app) return undefined;
      const r = side.app.partial().safeParse(s.app.bag);
      return r.success ? (s.app.bag as PublishData<A>) : undefined;
    },
    publishApp: (data) => {
      const s = read();
      if (!s || s.role !== 'peers') {
        throw new RelationError('REL_ERR_WRONG_SIDE', `publishApp() is for peers endpoints; "${endpoint}" is ${s ? s.role : 'not established yet'}`);
      }
      const leader = leaderOf(s);
      if (s.unit === '' || leader !== s.unit) {
        throw new RelationError(
          'REL_ERR_NOT_LEADER',
          `unit ${s.unit || '(unknown)'} is not the leader of "${endpoint}" (the leader is ${leader}); only the leader writes the application bag. Guard the handler with isLeader().`,
        );
      }
      const next = merged(s.app?.bag ?? {}, data, side.app, 'publishApp');
      if (s.app && jsonEqual(s.app.bag, next)) return;
      write((d) => {
        d.app = asDraft({ bag: next, version: (d.app?.version ?? 0) + 1, writer: s.unit, inc: s.incarnation });
      });
    },
  };
  return handle;
}
