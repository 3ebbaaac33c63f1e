/**
 * Declared facts: a charm may name its facts with a schema each, so that
 *   - a misspelled key in `fact(...)`, `ctx.get(...)`, `ctx.set(...)` is a
 *     TypeScript error (through `defineFacts`), and
 *   - values are checked at run time: setting an undeclared key, or a value
 *     its schema refuses, fails the handler with ENGINE_ERR_BAD_FACT, and a
 *     precondition on an undeclared key is refused when the charm loads.
 *
 * Schemas are Standard Schema v1 objects (zod 4, valibot, arktype...), so
 * the engine depends on no validation library.
 *
 * @example
 * const f = defineFacts({ 'kafka.installed': z.boolean(), 'kafka.port': z.number().int() });
 * const handlers = [
 *   f.handler({ name: 'install', when: f.not(f.fact('kafka.installed')), run: (ctx) => ctx.set('kafka.installed', true) }),
 *   f.handler({ name: 'configure', when: f.fact('kafka.installed'), run: (ctx) => { const port = ctx.get('kafka.port') ?? 9092; } }),
 * ];
 * // Engine / charm: { handlers, facts: f.schemas }
 */
import { EngineError } from './errors';
import type { CompensateContext, HandlerContext, HandlerSpec } from './handler';
import type { Json } from './json';
import { fact, factEquals, not, all, any, none, type Precondition, type PreconditionInput, type ValueTest } from './preconditions';

/** The part of the Standard Schema v1 interface the engine uses (https://standardschema.dev). */
export interface FactSchema<Output = unknown> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => FactSchemaResult<Output> | Promise<FactSchemaResult<Output>>;
    readonly types?: { readonly input: unknown; readonly output: Output } | undefined;
  };
}

type FactSchemaResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<{ readonly message: string; readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined }> };

export type FactSchemas = Readonly<Record<string, FactSchema>>;

/** The value type a declared fact holds. */
export type FactValue<F extends FactSchemas, K extends keyof F> = F[K] extends FactSchema<infer O> ? (O extends Json ? O : Json) : Json;

/**
 * Fact keys every charm may use without declaring them: set by the engine (`setStatus`) and the agent
 * (the charm config, and the options an operator set with `rhizome config`, which a charm that declared
 * its facts refused: every config change put its units in error).
 */
const BUILT_IN = new Set(['workload.status', 'config', 'config.overrides']);

/** A handler context whose fact reads and writes are typed by the declarations. */
export interface TypedHandlerContext<F extends FactSchemas> extends Omit<HandlerContext, 'get' | 'has' | 'set' | 'clear'> {
  get<K extends keyof F & string>(key: K): FactValue<F, K> | undefined;
  has(key: keyof F & string): boolean;
  set<K extends keyof F & string>(key: K, ...value: FactValue<F, K> extends true ? [value?: true] : [value: FactValue<F, K>]): void;
  clear(key: keyof F & string): void;
}

export interface TypedHandlerSpec<F extends FactSchemas> extends Omit<HandlerSpec, 'run' | 'compensate'> {
  readonly run: (ctx: TypedHandlerContext<F>) => void | Promise<void>;
  readonly compensate?: (ctx: CompensateContext) => void | Promise<void>;
}

export interface DeclaredFacts<F extends FactSchemas> {
  /** The declarations: pass them to the engine (`facts`) or the charm (`defineCharm({ facts })`). */
  readonly schemas: F;
  fact<K extends keyof F & string>(key: K, test?: (value: FactValue<F, K>) => boolean, label?: string): Precondition;
  factEquals<K extends keyof F & string>(key: K, value: FactValue<F, K>): Precondition;
  not(of: PreconditionInput): Precondition;
  all(...of: PreconditionInput[]): Precondition;
  any(...of: PreconditionInput[]): Precondition;
  none(...of: PreconditionInput[]): Precondition;
  /** Identity at run time; types the handler's context by the declarations. */
  handler(spec: TypedHandlerSpec<F>): HandlerSpec;
}

/** Declares a charm's facts; see the module comment. Keys are checked as fact keys at once. */
export function defineFacts<const F extends FactSchemas>(schemas: F): DeclaredFacts<F> {
  checkFactSchemas(schemas);
  return {
    schemas,
    fact: (key, test, label) => fact(key, test as ValueTest | undefined, label),
    factEquals: (key, value) => factEquals(key, value),
    not,
    all,
    any,
    none,
    handler: (spec) => spec as unknown as HandlerSpec,
  };
}

/** Throws ENGINE_ERR_OPTIONS unless every entry is a fact key with a Standard Schema. */
export function checkFactSchemas(schemas: unknown): asserts schemas is FactSchemas {
  if (schemas === null || typeof schemas !== 'object' || Array.isArray(schemas)) {
    throw new EngineError('ENGINE_ERR_OPTIONS', `facts must be an object of fact key → schema (e.g. { 'kafka.installed': z.boolean() }), got ${JSON.stringify(schemas)}`);
  }
  for (const [key, schema] of Object.entries(schemas)) {
    fact(key); // validates the key
    const std = (schema as { '~standard'?: { validate?: unknown } } | null)?.['~standard'];
    if (typeof std?.validate !== 'function') {
      throw new EngineError('ENGINE_ERR_OPTIONS', `the schema of fact ${JSON.stringify(key)} is not a Standard Schema (zod 4, valibot, arktype...); declare it like { '${key}': z.boolean() }`);
    }
  }
}

/** Checks one value against the declarations (when there are any); throws ENGINE_ERR_BAD_FACT saying what is wrong. */
export function checkFactValue(schemas: FactSchemas | undefined, key: string, value: Json): void {
  if (schemas === undefined || BUILT_IN.has(key)) return;
  const schema = Object.prototype.hasOwnProperty.call(schemas, key) ? schemas[key] : undefined;
  if (schema === undefined) {
    throw new EngineError('ENGINE_ERR_BAD_FACT', `fact ${JSON.stringify(key)} is not declared in the charm's facts (${declaredList(schemas)}); fix the name or declare it`);
  }
  const result = schema['~standard'].validate(value);
  if (result instanceof Promise) {
    throw new EngineError('ENGINE_ERR_BAD_FACT', `the schema of fact ${JSON.stringify(key)} validates asynchronously; fact schemas must be synchronous`);
  }
  if (result.issues !== undefined) {
    const problems = result.issues.map((i) => {
      const path = (i.path ?? []).map((p) => String(typeof p === 'object' ? p.key : p)).join('.');
      return path ? `${path}: ${i.message}` : i.message;
    });
    throw new EngineError('ENGINE_ERR_BAD_FACT', `value ${truncate(JSON.stringify(value))} for fact ${JSON.stringify(key)} does not match its declaration: ${problems.join('; ')}`);
  }
}

/** Throws ENGINE_ERR_BAD_PRECONDITION when a handler's precondition names an undeclared fact. */
export function checkDeclared(schemas: FactSchemas | undefined, key: string, handler: string): void {
  if (schemas === undefined || BUILT_IN.has(key) || Object.prototype.hasOwnProperty.call(schemas, key)) return;
  throw new EngineError('ENGINE_ERR_BAD_PRECONDITION', `handler "${handler}" waits on fact ${JSON.stringify(key)}, which is not declared in the charm's facts (${declaredList(schemas)}); a misspelling?`);
}

function declaredList(schemas: FactSchemas): string {
  const keys = Object.keys(schemas);
  if (keys.length === 0) return 'none declared';
  return `declared: ${keys.slice(0, 12).join(', ')}${keys.length > 12 ? ', ...' : ''}`;
}

function truncate(text: string | undefined): string {
  const t = text ?? 'undefined';
  return t.length > 80 ? `${t.slice(0, 77)}...` : t;
}
