/**
 * Every error the engine raises carries a stable code. Messages say what was
 * wrong and how to fix it; `cause` keeps the original error of a handler.
 */
export type EngineErrorCode =
  /** A fact key that is empty, not a string, or uses the reserved `@` prefix. */
  | 'ENGINE_ERR_BAD_KEY'
  /** A value that is not plain JSON. */
  | 'ENGINE_ERR_NOT_JSON'
  /** A handler declaration the engine cannot accept (no name, no preconditions, duplicate name...). */
  | 'ENGINE_ERR_BAD_HANDLER'
  /** A fact that is not declared in the charm's `facts`, or a value its schema refuses. */
  | 'ENGINE_ERR_BAD_FACT'
  /** A malformed precondition. */
  | 'ENGINE_ERR_BAD_PRECONDITION'
  /** A malformed event submitted to the engine. */
  | 'ENGINE_ERR_BAD_EVENT'
  /** A handler threw (or rejected) during a run. */
  | 'ENGINE_ERR_HANDLER_FAILED'
  /** A handler's promise did not settle within its deadline. */
  | 'ENGINE_ERR_HANDLER_TIMEOUT'
  /** A run failed outside any handler (a precondition's value test or the relation model threw). */
  | 'ENGINE_ERR_RUN_FAILED'
  /** A run cycled: a handler executed again on values it had already seen, or one handler passed the execution bound. */
  | 'ENGINE_ERR_NONCONVERGENT'
  /** The event's apply step (e.g. incoming relation data) threw. */
  | 'ENGINE_ERR_APPLY_FAILED'
  /** An operation that does not fit the engine's current state (resolve while not in error...). */
  | 'ENGINE_ERR_STATE'
  /** Options that contradict each other or are out of range. */
  | 'ENGINE_ERR_OPTIONS'
  /** The engine was stopped; the event will not run. */
  | 'ENGINE_ERR_STOPPED'
  /** A run was skipped by the operator (`skip`). */
  | 'ENGINE_ERR_SKIPPED'
  /** A context used after its handler returned (e.g. a stray async callback). */
  | 'ENGINE_ERR_CONTEXT_CLOSED'
  /** An `afterCommit` or `onReport` listener threw or rejected (the engine carried on). */
  | 'ENGINE_ERR_LISTENER';

export class EngineError extends Error {
  override readonly name = 'EngineError';
  readonly code: EngineErrorCode;

  constructor(code: EngineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Turns anything a handler threw into a message fit for a report and a status line. */
export function describeThrown(thrown: unknown): string {
  if (thrown instanceof Error) return thrown.message || thrown.name;
  if (typeof thrown === 'string') return thrown;
  try {
    return JSON.stringify(thrown) ?? String(thrown);
  } catch {
    return String(thrown);
  }
}
