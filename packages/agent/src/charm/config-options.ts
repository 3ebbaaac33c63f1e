/**
 * A charm's runtime config (`rhizome config SERVICE key=value`): what the
 * options are, and one check of an operator's change before any unit takes
 * it. Pure.
 *
 * Rules:
 *   - the keys are those the charm declares defaults for (`config`), plus
 *     those its `configSchema` names; any other key is refused, listing them;
 *   - a value arrives as text (the command line) and is read by the type of
 *     the key's default: numbers, booleans, JSON for objects and arrays, text
 *     otherwise (a key without a default takes JSON if it parses, else text);
 *   - the whole resulting config must pass the charm's `configSchema`, if any;
 *   - nothing is applied unless every key passes (no partial change).
 */
import type { Json } from '@rhizome/engine';
import { jsonEqual } from '@rhizome/engine';
import type { CharmDefinition } from './define';
import { AgentError } from '../errors';
import { formatIssues } from '../config';

export interface ConfigOption {
  readonly key: string;
  readonly default?: Json | undefined;
  readonly value: Json | undefined;
  /** `json` for objects and arrays; `any` when the charm gives no default. */
  readonly type: 'string' | 'number' | 'boolean' | 'json' | 'any';
  readonly description?: string | undefined;
}

function typeOf(v: Json | undefined): ConfigOption['type'] {
  if (v === undefined || v === null) return 'any';
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return typeof v as 'string' | 'number' | 'boolean';
  return 'json';
}

/** The schema's keys when it is an object schema (zod's `.shape`), else none. */
function schemaKeys(charm: CharmDefinition): string[] {
  const shape = (charm.configSchema as { shape?: unknown } | undefined)?.shape;
  return shape !== null && typeof shape === 'object' ? Object.keys(shape) : [];
}

export function configKeys(charm: CharmDefinition): string[] {
  return [...new Set([...Object.keys(charm.config ?? {}), ...schemaKeys(charm)])].sort();
}

/** Every option with its default and current value (for `rhizome config SERVICE`). */
export function describeConfig(charm: CharmDefinition, current: Readonly<Record<string, Json>>): ConfigOption[] {
  return configKeys(charm).map((key) => {
    const def = charm.config?.[key];
    return {
      key,
      ...(def !== undefined ? { default: def } : {}),
      value: current[key],
      type: typeOf(def),
      ...(charm.configDescriptions?.[key] ? { description: charm.configDescriptions[key] } : {}),
    };
  });
}

function readValue(key: string, text: string, def: Json | undefined): Json {
  const bad = (expected: string): never => {
    throw new AgentError('AGENT_ERR_CONFIG', `option "${key}" takes ${expected} (its default is ${JSON.stringify(def)}); got ${JSON.stringify(text)}`);
  };
  switch (typeOf(def)) {
    case 'number': {
      const n = Number(text);
      return text.trim() !== '' && Number.isFinite(n) ? n : bad('a number');
    }
    case 'boolean':
      return text === 'true' ? true : text === 'false' ? false : bad('true or false');
    case 'string':
      return text;
    case 'json':
      try {
        return JSON.parse(text) as Json;
      } catch {
        return bad('JSON');
      }
    case 'any':
      try {
        return JSON.parse(text) as Json;
      } catch {
        return text;
      }
  }
}

export interface ConfigChange {
  /** The whole config after the change. */
  readonly config: Record<string, Json>;
  /** Keys whose value differs from before. */
  readonly changed: string[];
}

/**
 * Checks `set` (key → text) against the charm and returns the new config;
 * throws AGENT_ERR_CONFIG naming every problem and changes nothing.
 */
export function planConfigChange(charm: CharmDefinition, current: Readonly<Record<string, Json>>, set: Readonly<Record<string, string>>): ConfigChange {
  const keys = configKeys(charm);
  const unknown = Object.keys(set).filter((k) => !keys.includes(k));
  if (unknown.length > 0) {
    throw new AgentError('AGENT_ERR_CONFIG', `unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}; this charm's options are ${keys.join(', ') || '(none)'}`);
  }
  const next: Record<string, Json> = { ...current };
  for (const [key, text] of Object.entries(set)) next[key] = readValue(key, text, charm.config?.[key]);
  if (charm.configSchema) {
    const r = charm.configSchema.safeParse(next);
    if (!r.success) throw new AgentError('AGENT_ERR_CONFIG', `invalid config: ${formatIssues(r.error.issues)}`);
  }
  return { config: next, changed: Object.keys(set).filter((k) => !jsonEqual(next[k], current[k])).sort() };
}
