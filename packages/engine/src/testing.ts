/**
 * @rhizome/engine/testing. State-transition testing for charm authors, in the style of the `ops`
 * framework's Scenario: give a knowledge-base state and an event, get back
 * the new state and the report. No I/O, no
 * timers, no retries: one run, exactly as the engine would execute it.
 *
 * @example
 * const out = await runScenario({
 *   handlers: charm.handlers,
 *   facts: { 'hdfs.installed': true },
 *   event: { kind: 'internal', name: 'config.changed' },
 * });
 * expect(out.facts['hdfs.configured']).toBe(true);
 * expect(out.report.steps.map((s) => s.handler)).toEqual(['write-config']);
 */
import { VirtualClock } from '@rhizome/clock';
import type { EngineError } from './errors';
import { internalEvent, parseEvent, START_EVENT, type EngineEvent } from './events';
import type { HandlerSpec, Transaction } from './handler';
import { ReadIndex } from './internal/read-index';
import { checkFactSchemas, type FactSchemas } from './fact-schema';
import { HandlerTable } from './internal/handler-table';
import type { Json } from './json';
import { createKnowledgeBase, factsOf, type KnowledgeBase } from './knowledge-base';
import { inMemoryRelationModel, type RelationModel } from './relation-model';
import type { RunReport } from './report';
import { executeRun } from './internal/run';
import { DEFAULT_ENGINE_OPTIONS } from './engine';

export { createKnowledgeBase } from './knowledge-base';
export { inMemoryRelationModel } from './relation-model';
export type { InMemoryRelationState } from './relation-model';

export interface ScenarioInput {
  readonly handlers: readonly HandlerSpec[];
  /** Starting state: a whole knowledge base (e.g. the output of a previous scenario)... */
  readonly kb?: KnowledgeBase;
  /** ...or just facts and relation state. */
  readonly facts?: Record<string, Json>;
  readonly relations?: Record<string, Json>;
  /** The event to run; defaults to `start` (which also checks every fact-only handler). */
  readonly event?: EngineEvent;
  readonly apply?: (tx: Transaction) => void;
  readonly relationModel?: RelationModel;
  readonly maxHandlerExecutions?: number;
  /** The charm's declared facts (the engine's `facts` option). */
  readonly factSchemas?: FactSchemas;
}

export interface ScenarioOutput {
  /** The knowledge base after the run (unchanged if it failed). */
  readonly kb: KnowledgeBase;
  readonly facts: Readonly<Record<string, Json>>;
  readonly report: RunReport;
  readonly committed: boolean;
  readonly error?: EngineError;
}

export async function runScenario(input: ScenarioInput): Promise<ScenarioOutput> {
  const kb = input.kb ?? createKnowledgeBase({ facts: input.facts ?? {}, relations: input.relations ?? {} });
  const event = input.event ? parseEvent(input.event) : internalEvent(START_EVENT);
  if (input.factSchemas !== undefined) checkFactSchemas(input.factSchemas);
  const table = new HandlerTable(input.handlers, input.factSchemas);
  const result = await executeRun({
    kb,
    table,
    reads: ReadIndex.fromKnowledge(kb, table.handlers.map((h) => h.name)),
    event,
    apply: input.apply,
    relationModel: input.relationModel ?? inMemoryRelationModel,
    clock: new VirtualClock(),
    runId: 'scenario',
    attempt: 1,
    maxHandlerExecutions: input.maxHandlerExecutions ?? DEFAULT_ENGINE_OPTIONS.maxHandlerExecutions,
    handlerDeadlineMs: Infinity, // no timers in scenarios (the clock is manual)
    fullScan: event.kind === 'internal' && event.name === START_EVENT,
    facts: input.factSchemas,
  });
  if (result.ok) {
    return { kb: result.commit.kb, facts: factsOf(result.commit.kb), report: result.commit.report, committed: true };
  }
  return { kb, facts: factsOf(kb), report: result.report, committed: false, error: result.error };
}
