/**
 * @rhizome/engine: facts, events, preconditions, handlers, and runs as
 * transactions (DESIGN.md, "Engine semantics"). Charm authors need the
 * precondition builders and defineHandler/defineFacts; embedders the Engine,
 * its reports and the knowledge-base persistence helpers. Scenario tests and
 * in-memory models: `@rhizome/engine/testing`. The rest of src/ is internal.
 */
export { Engine, DEFAULT_ENGINE_OPTIONS } from './engine';
export type { EngineOptions, EngineState, EngineStatus, EngineErrorStatus, RetryOptions, SubmitOptions } from './engine';
export { EngineError } from './errors';
export type { EngineErrorCode } from './errors';
export { assertJson, jsonEqual } from './json';
export type { Json, JsonObject } from './json';
export { fact, factEquals, event, relationFact, relationEvent, not, all, any, none } from './preconditions';
export type { Precondition, PreconditionInput, ValueTest } from './preconditions';
export { defineHandler, asDraft } from './handler';
export type { HandlerSpec, HandlerContext, CompensateContext, Transaction, WorkloadState, RelationDraft } from './handler';
export { defineFacts } from './fact-schema';
export type { FactSchema, FactSchemas, FactValue, DeclaredFacts, TypedHandlerContext, TypedHandlerSpec } from './fact-schema';
export { internalEvent } from './events';
export type { EngineEvent, InternalEvent, RelationEvent } from './events';
export type { RelationModel, RelationFactQuery, RelationFactName, RelationEventName } from './relation-model';
export type { RunReport, StepReport, CompensationReport, RunOutcome } from './report';
export type { BeforeCommitHook, RunCommit } from './internal/run';
/** The knowledge base and its persistence: a snapshot plus the patches of each commit. */
export { EMPTY_KNOWLEDGE_BASE, getFact, factsOf } from './knowledge-base';
export type { KnowledgeBase } from './knowledge-base';
export { reviveKnowledgeBase, replayPatches } from './snapshot';
export type { Patch } from 'immer';
