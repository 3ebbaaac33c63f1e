/**
 * Events are what start runs: internal ones (a file changed, config changed,
 * a user event, `start`) and relation ones (a remote unit joined, its data
 * changed, it departed, the relation was broken). An event is active only
 * at the instant it is raised; nothing about it persists unless a handler
 * writes a fact.
 */
import { EngineError } from './errors';
import { assertJson, type Json } from './json';
import type { RelationEventName } from './relation-model';

export interface InternalEvent {
  readonly kind: 'internal';
  readonly name: string;
  readonly payload?: Json;
}

export interface RelationEvent {
  readonly kind: 'relation';
  readonly endpoint: string;
  readonly name: RelationEventName;
  /** The remote unit the event is about (joined, changed, departed). */
  readonly unit?: string;
  /** For `changed`: the keys whose values changed. */
  readonly keys?: readonly string[];
  readonly payload?: Json;
}

export type EngineEvent = InternalEvent | RelationEvent;

/** The name of the built-in event that starts an agent; `atStartup` handlers run on it. */
export const START_EVENT = 'start';

export function internalEvent(name: string, payload?: Json): InternalEvent {
  return payload === undefined ? { kind: 'internal', name } : { kind: 'internal', name, payload };
}

/** A one-line description, for reports and logs: `config.changed`, `namenode.joined(namenode/0)`. */
export function describeEvent(e: EngineEvent): string {
  if (e.kind === 'internal') return e.name;
  return `${e.endpoint}.${e.name}${e.unit !== undefined ? `(${e.unit})` : ''}`;
}

/** Validates an event at the engine's boundary. */
export function parseEvent(input: unknown): EngineEvent {
  if (input === null || typeof input !== 'object') {
    throw new EngineError('ENGINE_ERR_BAD_EVENT', `an event must be an object like { kind: 'internal', name: 'config.changed' }, got ${JSON.stringify(input)}`);
  }
  const e = input as Record<string, unknown>;
  if (typeof e['name'] !== 'string' || e['name'].length === 0) {
    throw new EngineError('ENGINE_ERR_BAD_EVENT', 'an event needs a non-empty string name');
  }
  if (e['payload'] !== undefined) assertJson(e['payload'], `payload of event ${e['name']}`);
  if (e['kind'] === 'internal') return input as InternalEvent;
  if (e['kind'] === 'relation') {
    if (typeof e['endpoint'] !== 'string' || e['endpoint'].length === 0) {
      throw new EngineError('ENGINE_ERR_BAD_EVENT', `relation event ${e['name']} needs the endpoint it happened on`);
    }
    if (!['joined', 'changed', 'departed', 'broken'].includes(e['name'])) {
      throw new EngineError('ENGINE_ERR_BAD_EVENT', `unknown relation event "${e['name']}"; use joined, changed, departed or broken`);
    }
    return input as RelationEvent;
  }
  throw new EngineError('ENGINE_ERR_BAD_EVENT', `event kind must be 'internal' or 'relation', got ${JSON.stringify(e['kind'])}`);
}
