/**
 * State-transition testing for charm authors, in the style of the `ops`
 * framework's Scenario: give a knowledge-base state and an event, get back
 * the new state, the report and the messages that would be sent. No I/O, no
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
import { ManualClock } from './clock';
import type { EngineError } from './errors';
import { internalEvent, parseEvent, START_EVENT, type EngineEvent } from './events';
import type { HandlerSpec, OutboxMessage, Transaction } from './handler';
import { HandlerTable } from './handler-table';
import type { Json } from './json';
import { createKnowledgeBase, factsOf, type KnowledgeBase } from './knowledge-base';
import { inMemoryRelationModel, type RelationModel } from './relation-model';
import type { RunReport } from './report';
import { executeRun } from './run';

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
}

export interface ScenarioOutput {
  /** The knowledge base after the run (unchanged if it failed). */
  readonly kb: KnowledgeBase;
  readonly facts: Readonly<Record<string, Json>>;
  readonly report: RunReport;
  /** Messages the run would send (empty if it failed). */
  readonly outbox: readonly OutboxMessage[];
  readonly committed: boolean;
  readonly error?: EngineError;
}

export async function runScenario(input: ScenarioInput): Promise<ScenarioOutput> {
  const kb = input.kb ?? createKnowledgeBase({ facts: input.facts ?? {}, relations: input.relations ?? {} });
  const event = input.event ? parseEvent(input.event) : internalEvent(START_EVENT);
  const result = await executeRun({
    kb,
    table: new HandlerTable(input.handlers),
    event,
    apply: input.apply,
    relationModel: input.relationModel ?? inMemoryRelationModel,
    clock: new ManualClock(),
    runId: 'scenario',
    attempt: 1,
    maxHandlerExecutions: input.maxHandlerExecutions ?? 1000,
    fullScan: event.kind === 'internal' && event.name === START_EVENT,
  });
  if (result.ok) {
    return { kb: result.commit.kb, facts: factsOf(result.commit.kb), report: result.commit.report, outbox: result.commit.outbox, committed: true };
  }
  return { kb, facts: factsOf(kb), report: result.report, outbox: [], committed: false, error: result.error };
}
