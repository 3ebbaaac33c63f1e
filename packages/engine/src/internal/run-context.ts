/** What a handler sees of its run: the transaction over the stage, and the context around it. */
import { EngineError } from '../errors';
import { internalEvent, type EngineEvent } from '../events';
import type { HandlerContext, RelationDraft, Transaction, WorkloadState } from '../handler';
import type { Json } from '../json';
import { keysToken, relationToken } from '../knowledge-base';
import type { RelationFactName } from '../relation-model';
import type { MutableStep } from './run-step';
import type { Stage } from './stage';

/**
 * The transaction surface over a stage. A class rather than an object of
 * closures: one is built per handler execution, and per-call closures were a
 * measurable share of a run's overhead.
 */
export class StageTransaction implements Transaction {
  constructor(protected readonly stage: Stage) {}
  protected check(): void {}
  /** Records a read (the first value seen per token); the apply step's transaction records nothing. */
  protected read(_token: string, _value: unknown): void {}
  get<T extends Json = Json>(key: string): T | undefined {
    this.check();
    const v = this.stage.fact(key);
    this.read(key, v);
    return v as T | undefined;
  }
  has(key: string): boolean {
    this.check();
    const v = this.stage.fact(key);
    this.read(key, v);
    return v !== undefined && v !== false;
  }
  // An explicit `undefined` is an error, not a flag: only a missing argument means `true`.
  set(key: string, ...value: [Json?]): void {
    this.check();
    this.stage.set(key, value.length === 0 ? true : (value[0] as Json));
  }
  clear(key: string): void {
    this.check();
    this.stage.clear(key);
  }
  keys(prefix?: string): string[] {
    this.check();
    const out = this.stage.keys(prefix);
    this.read(keysToken(prefix), out);
    return out;
  }
  relationState(endpoint: string): Json | undefined {
    this.check();
    const v = this.stage.relationState(endpoint);
    this.read(relationToken(endpoint), v);
    return v;
  }
  updateRelationState<S = Json>(endpoint: string, recipe: (draft: RelationDraft<S> | undefined) => S | void): void {
    this.check();
    // The stage checks that what the recipe leaves is JSON.
    this.stage.updateRelationState(endpoint, recipe as (draft: unknown) => Json | void);
  }
  removeRelationState(endpoint: string): void {
    this.check();
    this.stage.removeRelationState(endpoint);
  }
  relationFact(endpoint: string, fact: RelationFactName, key?: string): Json | undefined {
    this.check();
    this.read(relationToken(endpoint), this.stage.relationState(endpoint));
    return this.stage.relationFact(endpoint, fact, key);
  }
}

export class RunContext extends StageTransaction implements HandlerContext {
  private open = true;
  private controller: AbortController | undefined;
  constructor(
    stage: Stage,
    readonly handler: string,
    readonly runId: string,
    readonly event: EngineEvent | undefined,
    readonly trigger: EngineEvent,
    readonly now: number,
    private readonly step: MutableStep,
    private readonly run: { raised(step: MutableStep, e: EngineEvent): void },
    private readonly reads: Map<string, unknown>,
  ) {
    super(stage);
  }
  protected override check(): void {
    if (!this.open) {
      throw new EngineError('ENGINE_ERR_CONTEXT_CLOSED', `handler "${this.handler}" used its context after it returned or passed its deadline (a stray callback or an un-awaited promise?); await everything inside run()`);
    }
  }
  protected override read(token: string, value: unknown): void {
    if (!this.reads.has(token)) this.reads.set(token, value);
  }
  /** Aborted when the handler passes its deadline; created on first use (most handlers never look). */
  get signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }
  close(): void {
    this.open = false;
  }
  /** The deadline passed: close the context and tell whoever listens on the signal to stop. */
  abort(): void {
    this.open = false;
    this.controller?.abort(new EngineError('ENGINE_ERR_HANDLER_TIMEOUT', `handler "${this.handler}" passed its deadline`));
  }
  raise(name: string, payload?: Json): void {
    this.check();
    this.run.raised(this.step, internalEvent(name, payload));
  }
  setStatus(state: WorkloadState, message: string): void {
    this.check();
    this.stage.set('workload.status', { state, message });
  }
  note(message: string): void {
    this.check();
    this.step.notes.push(message);
  }
}
