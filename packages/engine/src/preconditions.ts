/**
 * Preconditions, the paper's four kinds: internal fact, internal event,
 * relation fact and relation event, with negation and all / any / none over
 * facts, and an optional predicate on a fact's value.
 *
 * A handler's precondition is normalized once, at registration, into
 *   - at most one event precondition (two different events are never active
 *     at the same instant, so asking for both is a mistake we report), and
 *   - a fact expression, evaluated whenever the handler is queued or retested.
 * Event preconditions are positive and top-level only: "not event X" has no
 * meaning in a run, which processes exactly one event at a time.
 *
 * Each fact leaf names a dependency token (a fact key, or `@rel/<endpoint>`
 * for relation facts); the engine indexes handlers by these tokens so the
 * retest after a handler only looks at handlers that read what changed.
 *
 * @example
 * all(fact('hdfs.installed'), relationFact('namenode', 'available'), not(fact('hdfs.configured')))
 */
import { EngineError } from './errors';
import type { Json } from './json';
import { assertFactKey, relationToken } from './knowledge-base';
import type { RelationEventName, RelationFactName } from './relation-model';

export type ValueTest = (value: Json) => boolean;

export type Precondition =
  | { readonly kind: 'fact'; readonly key: string; readonly test?: ValueTest; readonly label?: string }
  | { readonly kind: 'relation-fact'; readonly endpoint: string; readonly fact: RelationFactName; readonly key?: string; readonly test?: ValueTest; readonly label?: string }
  | { readonly kind: 'event'; readonly name: string; readonly test?: (payload: Json | undefined) => boolean }
  | { readonly kind: 'relation-event'; readonly endpoint: string; readonly name: RelationEventName }
  | { readonly kind: 'not'; readonly of: Precondition }
  | { readonly kind: 'all' | 'any' | 'none'; readonly of: readonly Precondition[] };

/** What `when` accepts: a precondition, a fact key as shorthand, or a list meaning "all of". */
export type PreconditionInput = Precondition | string | readonly PreconditionInput[];

export type EventPrecondition = Extract<Precondition, { kind: 'event' | 'relation-event' }>;
export type FactExpression = Exclude<Precondition, EventPrecondition>;

/**
 * A fact holds when it is set and not `false` (a flag turned off), or, with
 * a value test, when it is set and the test accepts its value.
 *
 * @example fact('hdfs.installed')
 * @example fact('config.port', (v) => typeof v === 'number' && v > 1024, 'unprivileged port')
 */
export function fact(key: string, test?: ValueTest, label?: string): Precondition {
  assertFactKey(key);
  return { kind: 'fact', key, ...(test ? { test } : {}), ...(label !== undefined ? { label } : {}) };
}

/** A fact whose value equals `value` (strictly, for scalars; structurally for JSON). */
export function factEquals(key: string, value: Json): Precondition {
  const expected = JSON.stringify(value);
  return fact(key, (v) => JSON.stringify(v) === expected, `${key} == ${expected}`);
}

/**
 * An internal event, active only at the instant it is raised: a file change,
 * a config change, a user event, `start`.
 */
export function event(name: string, test?: (payload: Json | undefined) => boolean): Precondition {
  assertName(name, 'event name');
  return { kind: 'event', name, ...(test ? { test } : {}) };
}

/**
 * A fact derived from relation state: `joined`, `departed`, `available`, or
 * the value of a key in the remote data (`relationFact('namenode', 'value', 'port')`).
 */
export function relationFact(endpoint: string, factName: RelationFactName, key?: string, test?: ValueTest): Precondition {
  assertName(endpoint, 'endpoint');
  if (factName === 'value' && (key === undefined || key === '')) {
    throw new EngineError('ENGINE_ERR_BAD_PRECONDITION', `relationFact('${endpoint}', 'value') needs the key to read, e.g. relationFact('${endpoint}', 'value', 'port')`);
  }
  return { kind: 'relation-fact', endpoint, fact: factName, ...(key !== undefined ? { key } : {}), ...(test ? { test } : {}) };
}

/** A relation event on an endpoint: `joined`, `changed`, `departed` or `broken`. */
export function relationEvent(endpoint: string, name: RelationEventName): Precondition {
  assertName(endpoint, 'endpoint');
  if (!['joined', 'changed', 'departed', 'broken'].includes(name)) {
    throw new EngineError('ENGINE_ERR_BAD_PRECONDITION', `unknown relation event "${String(name)}"; use joined, changed, departed or broken`);
  }
  return { kind: 'relation-event', endpoint, name };
}

export function not(of: PreconditionInput): Precondition {
  return { kind: 'not', of: normalizeInput(of) };
}
export function all(...of: PreconditionInput[]): Precondition {
  return { kind: 'all', of: of.map(normalizeInput) };
}
export function any(...of: PreconditionInput[]): Precondition {
  return { kind: 'any', of: of.map(normalizeInput) };
}
export function none(...of: PreconditionInput[]): Precondition {
  return { kind: 'none', of: of.map(normalizeInput) };
}

function assertName(name: unknown, what: string): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new EngineError('ENGINE_ERR_BAD_PRECONDITION', `${what} must be a non-empty string, got ${JSON.stringify(name)}`);
  }
}

export function normalizeInput(input: PreconditionInput): Precondition {
  if (typeof input === 'string') return fact(input);
  if (Array.isArray(input)) return all(...(input as readonly PreconditionInput[]));
  if (input === null || typeof input !== 'object' || typeof (input as { kind?: unknown }).kind !== 'string') {
    throw new EngineError('ENGINE_ERR_BAD_PRECONDITION', `not a precondition: ${JSON.stringify(input)}; build one with fact(), event(), relationFact(), relationEvent(), not(), all(), any(), none()`);
  }
  return input as Precondition;
}

export interface CompiledPrecondition {
  readonly event: EventPrecondition | undefined;
  /** undefined when the handler has no fact preconditions. */
  readonly facts: FactExpression | undefined;
  /** Dependency tokens the fact expression reads, without duplicates. */
  readonly tokens: readonly string[];
}

/** Splits a precondition into its event part and its fact part, rejecting shapes that cannot mean anything. */
export function compilePrecondition(input: PreconditionInput | undefined, handlerName: string): CompiledPrecondition {
  if (input === undefined) return { event: undefined, facts: undefined, tokens: [] };
  const root = normalizeInput(input);
  const events: EventPrecondition[] = [];
  const factParts: FactExpression[] = [];
  const top = root.kind === 'all' ? root.of : [root];
  for (const part of top) {
    if (part.kind === 'event' || part.kind === 'relation-event') events.push(part);
    else {
      checkNoNestedEvent(part, handlerName);
      factParts.push(part);
    }
  }
  if (events.length > 1) {
    throw new EngineError(
      'ENGINE_ERR_BAD_PRECONDITION',
      `handler "${handlerName}" waits for ${events.length} events (${events.map(describe).join(', ')}) at once; only one event is active at any instant, so it could never run. Use one handler per event.`,
    );
  }
  const facts: FactExpression | undefined = factParts.length === 0 ? undefined : factParts.length === 1 ? factParts[0] : { kind: 'all', of: factParts };
  const tokens = new Set<string>();
  if (facts) collectTokens(facts, tokens);
  return { event: events[0], facts, tokens: [...tokens] };
}

function checkNoNestedEvent(p: Precondition, handlerName: string): void {
  if (p.kind === 'event' || p.kind === 'relation-event') {
    throw new EngineError(
      'ENGINE_ERR_BAD_PRECONDITION',
      `handler "${handlerName}": ${describe(p)} is negated or inside any()/none(); event preconditions must be listed at the top level (events are active one at a time)`,
    );
  }
  if (p.kind === 'not') checkNoNestedEvent(p.of, handlerName);
  else if (p.kind === 'all' || p.kind === 'any' || p.kind === 'none') for (const q of p.of) checkNoNestedEvent(q, handlerName);
}

function collectTokens(p: FactExpression | Precondition, into: Set<string>): void {
  switch (p.kind) {
    case 'fact':
      into.add(p.key);
      return;
    case 'relation-fact':
      into.add(relationToken(p.endpoint));
      return;
    case 'not':
      collectTokens(p.of, into);
      return;
    case 'all':
    case 'any':
    case 'none':
      for (const q of p.of) collectTokens(q, into);
      return;
    default:
      return;
  }
}

/** How the engine reads facts while evaluating; backed by the run's draft. */
export interface FactReader {
  fact(key: string): Json | undefined;
  relationFact(endpoint: string, fact: RelationFactName, key: string | undefined): Json | undefined;
}

function leafHolds(value: Json | undefined, test: ValueTest | undefined): boolean {
  if (value === undefined) return false;
  return test ? test(value) : value !== false;
}

/** Evaluates a fact expression. Event leaves never reach here (compilePrecondition keeps them apart). */
export function holds(p: FactExpression | Precondition, reader: FactReader): boolean {
  switch (p.kind) {
    case 'fact':
      return leafHolds(reader.fact(p.key), p.test);
    case 'relation-fact':
      return leafHolds(reader.relationFact(p.endpoint, p.fact, p.key), p.test);
    case 'not':
      return !holds(p.of, reader);
    case 'all':
      return p.of.every((q) => holds(q, reader));
    case 'any':
      return p.of.some((q) => holds(q, reader));
    case 'none':
      return !p.of.some((q) => holds(q, reader));
    case 'event':
    case 'relation-event':
      return true;
  }
}

/** Human-readable form, used in run reports ("queued because ...") and errors. */
export function describe(p: Precondition): string {
  switch (p.kind) {
    case 'fact':
      return p.label ?? (p.test ? `${p.key} matches` : p.key);
    case 'relation-fact':
      return p.label ?? `${p.endpoint}.${p.fact}${p.key !== undefined ? `(${p.key})` : ''}${p.test ? ' matches' : ''}`;
    case 'event':
      return `event ${p.name}`;
    case 'relation-event':
      return `${p.endpoint}.${p.name}`;
    case 'not':
      return `not ${describe(p.of)}`;
    case 'all':
      return p.of.map(describe).join(' and ');
    case 'any':
      return `any(${p.of.map(describe).join(', ')})`;
    case 'none':
      return `none(${p.of.map(describe).join(', ')})`;
  }
}

/** The leaves that currently hold, for the report's "why was this queued". */
export function explain(p: FactExpression | undefined, reader: FactReader): string[] {
  if (!p) return [];
  const out: string[] = [];
  const walk = (q: Precondition, negated: boolean): void => {
    switch (q.kind) {
      case 'fact':
      case 'relation-fact':
        if (holds(q, reader) !== negated) out.push(negated ? `not ${describe(q)}` : describe(q));
        return;
      case 'not':
        walk(q.of, !negated);
        return;
      case 'none':
        for (const r of q.of) walk(r, !negated);
        return;
      case 'all':
      case 'any':
        for (const r of q.of) walk(r, negated);
        return;
      default:
        return;
    }
  };
  walk(p, false);
  return out;
}
