/**
 * Handlers: named reactive steps with preconditions. What a handler may do
 * is what its context offers; everything it writes is staged in the run's
 * transaction and reaches the knowledge base (and the network) only when the
 * whole run commits.
 */
import type { Draft } from 'immer';
import { EngineError } from './errors';
import type { EngineEvent } from './events';
import type { Json } from './json';
import type { KnowledgeBase } from './knowledge-base';
import { compilePrecondition, type CompiledPrecondition, type PreconditionInput } from './preconditions';
import type { RelationFactName } from './relation-model';

export type WorkloadState = 'active' | 'blocked' | 'waiting' | 'maintenance' | 'error';

/**
 * A writable view of relation state of type `S` inside an
 * `updateRelationState` recipe (an immer draft: mutate it in place, or
 * return a replacement). `S` is the shape the package that owns the
 * endpoint's state keeps there (packages/relations: EndpointState).
 */
export type RelationDraft<S> = Draft<S>;

/**
 * Types a (frozen or fresh) value for assignment into a draft, e.g. a
 * readonly record into a mutable slot; immer copies on write, so nothing is
 * mutated through it (immer's castDraft).
 */
export function asDraft<T>(value: T): RelationDraft<T> {
  return value as RelationDraft<T>;
}

/** The staged read/write surface of a run, shared by handlers and by an event's apply step. */
export interface Transaction {
  /** A fact's staged value, or undefined when not set. */
  get<T extends Json = Json>(key: string): T | undefined;
  /** Whether a fact is set and not `false`. */
  has(key: string): boolean;
  /** Sets a fact (`true` by default: a flag). Setting an identical value is not a change. */
  set(key: string, value?: Json): void;
  /** Removes a fact. Clearing an absent fact is not a change. */
  clear(key: string): void;
  /** Keys of the facts set, optionally under a dotted prefix. */
  keys(prefix?: string): string[];
  /** The staged relation state of an endpoint (owned by packages/relations). */
  relationState(endpoint: string): Json | undefined;
  /**
   * Changes an endpoint's relation state. The recipe receives an immer draft
   * of it, typed as `S` (or undefined when there is no state yet), and may
   * mutate it or return a replacement; what it leaves must be JSON.
   */
  updateRelationState<S = Json>(endpoint: string, recipe: (draft: RelationDraft<S> | undefined) => S | void): void;
  /** Removes an endpoint's relation state (a key packages/relations no longer needs, e.g. a removed relation's link records). */
  removeRelationState(endpoint: string): void;
  /** A relation fact evaluated on the staged state. */
  relationFact(endpoint: string, fact: RelationFactName, key?: string): Json | undefined;
}

export interface HandlerContext extends Transaction {
  readonly handler: string;
  readonly runId: string;
  /** The event that queued this handler (the run's trigger or one raised by a handler); undefined for fact-only handlers. */
  readonly event: EngineEvent | undefined;
  /** The event that started the run. */
  readonly trigger: EngineEvent;
  /** Engine clock time at which the handler started. */
  readonly now: number;
  /** Raises an internal event, active at this instant only. */
  raise(name: string, payload?: Json): void;
  /** Sets the workload status shown by `status` (stored as the fact `workload.status`). */
  setStatus(state: WorkloadState, message: string): void;
  /** Adds a line to this handler's entry in the run report. */
  note(message: string): void;
  /**
   * Aborted when the handler passes its deadline (the run is then rolled
   * back). Pass it to child processes and fetches so they stop too.
   */
  readonly signal: AbortSignal;
}

/** What a compensating step sees: the failed run's facts before it started, and why it failed. */
export interface CompensateContext {
  readonly handler: string;
  readonly runId: string;
  readonly trigger: EngineEvent;
  /** The committed knowledge base from before the run (the run was rolled back). */
  readonly before: KnowledgeBase;
  /** The handler that failed and its error message. */
  readonly failure: { readonly handler: string; readonly message: string };
  note(message: string): void;
}

export interface HandlerSpec {
  /** Unique within a charm; appears in reports, status and errors. */
  readonly name: string;
  /** Preconditions. Required unless `atStartup` is true. */
  readonly when?: PreconditionInput;
  /** Runs on the `start` event (with `when`, only if it also holds). */
  readonly atStartup?: boolean;
  /** Higher runs first among handlers queued together; ties keep declaration order. Default 0. */
  readonly priority?: number;
  readonly run: (ctx: HandlerContext) => void | Promise<void>;
  /**
   * How long the handler's promise may take (ms) before the run is rolled
   * back, compensated and retried like any failure (ENGINE_ERR_HANDLER_TIMEOUT).
   * Defaults to the engine's `handlerDeadlineMs`; `Infinity` means none.
   */
  readonly deadlineMs?: number;
  /** Undoes the handler's external effects when a later handler in the same run fails (saga). */
  readonly compensate?: (ctx: CompensateContext) => void | Promise<void>;
}

export interface CompiledHandler {
  readonly spec: HandlerSpec;
  readonly name: string;
  /** Declaration order; ties on priority are broken by it. */
  readonly index: number;
  readonly priority: number;
  readonly pre: CompiledPrecondition;
  readonly atStartup: boolean;
}

/**
 * Identity function that gives charm authors type checking and editor help.
 *
 * @example
 * defineHandler({
 *   name: 'write-core-site',
 *   when: all(fact('hdfs.installed'), relationFact('namenode', 'available')),
 *   run: (ctx) => { ctx.set('hdfs.configured'); },
 * })
 */
export function defineHandler(spec: HandlerSpec): HandlerSpec {
  return spec;
}

/** Validates and compiles a charm's handlers; every mistake is reported with the handler's name. */
export function compileHandlers(specs: readonly HandlerSpec[]): CompiledHandler[] {
  const names = new Set<string>();
  return specs.map((spec, index) => {
    if (spec === null || typeof spec !== 'object') {
      throw new EngineError('ENGINE_ERR_BAD_HANDLER', `handler #${index} is ${JSON.stringify(spec)}, not a handler object`);
    }
    const label = typeof spec.name === 'string' && spec.name ? `"${spec.name}"` : `#${index}`;
    if (typeof spec.name !== 'string' || spec.name.length === 0) {
      throw new EngineError('ENGINE_ERR_BAD_HANDLER', `handler ${label} has no name; give every handler a unique name so reports can say what ran`);
    }
    if (names.has(spec.name)) {
      throw new EngineError('ENGINE_ERR_BAD_HANDLER', `two handlers are named "${spec.name}"; handler names must be unique within a charm`);
    }
    names.add(spec.name);
    if (typeof spec.run !== 'function') {
      throw new EngineError('ENGINE_ERR_BAD_HANDLER', `handler ${label} has no run function`);
    }
    if (spec.compensate !== undefined && typeof spec.compensate !== 'function') {
      throw new EngineError('ENGINE_ERR_BAD_HANDLER', `handler ${label}: compensate must be a function`);
    }
    if (spec.deadlineMs !== undefined && !(typeof spec.deadlineMs === 'number' && spec.deadlineMs > 0)) {
      throw new EngineError('ENGINE_ERR_BAD_HANDLER', `handler ${label}: deadlineMs must be a positive number of milliseconds (Infinity for none), got ${String(spec.deadlineMs)}`);
    }
    if (spec.priority !== undefined && !Number.isFinite(spec.priority)) {
      throw new EngineError('ENGINE_ERR_BAD_HANDLER', `handler ${label}: priority must be a finite number`);
    }
    const atStartup = spec.atStartup === true;
    const pre = compilePrecondition(spec.when, spec.name);
    if (!atStartup && pre.event === undefined && pre.facts === undefined) {
      throw new EngineError(
        'ENGINE_ERR_BAD_HANDLER',
        `handler ${label} has no preconditions, so it would never be queued; add \`when\` (e.g. when: fact('x')) or declare \`atStartup: true\` to run it when the agent starts`,
      );
    }
    if (atStartup && pre.event !== undefined) {
      throw new EngineError('ENGINE_ERR_BAD_HANDLER', `handler ${label} is atStartup and also waits for an event; it runs on the start event, so drop one of them`);
    }
    return { spec, name: spec.name, index, priority: spec.priority ?? 0, pre, atStartup };
  });
}
