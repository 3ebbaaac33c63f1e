/**
 * Operator actions (`rhizome run UNIT ACTION key=value ...`, Juju's actions):
 * each declared action becomes a handler `action:NAME` on the internal event
 * `action.NAME` (payload: the checked parameters), so an action runs as one
 * transaction like any run and shows in `runs` and the logs. The agent
 * submits it fail-fast: a failure rolls the run back and is the operator's
 * answer, not a unit fault. The handler leaves the action's return value in
 * `results` under the run id, where the agent picks it up after the commit.
 */
import { event, type HandlerSpec, type Json } from '@rhizome/engine';
import { formatIssues } from '../config';
import { AgentError } from '../errors';
import type { CharmDefinition, UnitContext } from './define';

/** The internal event an action runs on. */
export function actionEvent(name: string): string {
  return `action.${name}`;
}

/** One handler per declared action. `unit` is read at run time (the config may have changed). */
export function actionHandlers(charm: CharmDefinition, unit: () => UnitContext, results: Map<string, Json>): HandlerSpec[] {
  return Object.entries(charm.actions ?? {}).map(([name, action]) => ({
    name: `action:${name}`,
    when: event(actionEvent(name)),
    run: async (ctx) => {
      // What readActionParams made of the operator's texts: the schema's output.
      const params = (ctx.event?.payload ?? {}) as Record<string, Json>;
      const value = await action.run(ctx, params, unit());
      results.set(ctx.runId, value === undefined ? null : value);
    },
  }));
}

/**
 * The parameter names a zod object schema declares, when it refuses others
 * silently (a plain `z.object` strips unknown keys: a misspelled optional
 * parameter would be dropped without a word). Undefined for a schema that
 * keeps or refuses unknown keys itself, or that is not a zod object.
 */
function declaredKeys(schema: unknown): string[] | undefined {
  const s = schema as { shape?: unknown; _zod?: { def?: { catchall?: unknown } } };
  if (s.shape === null || typeof s.shape !== 'object' || s._zod?.def?.catchall !== undefined) return undefined;
  return Object.keys(s.shape);
}

/**
 * Reads `key=value` texts and checks them against the action's schema. A
 * text is JSON when it parses (`n=3`, `on=true`), else the text itself; a
 * value the schema refuses as JSON but takes as text (`id=0042` for a
 * string) is passed as text, key by key, so the error names only the
 * parameters that are wrong either way.
 */
export function readActionParams(charm: CharmDefinition, name: string, set: Readonly<Record<string, string>>): Record<string, Json> {
  const action = charm.actions?.[name];
  if (action === undefined) {
    const names = Object.keys(charm.actions ?? {}).sort();
    throw new AgentError('AGENT_ERR_ACTION', `no action "${name}"; this charm's actions are ${names.join(', ') || '(none)'}`);
  }
  const raw: Record<string, Json> = {};
  for (const [k, text] of Object.entries(set)) {
    try {
      raw[k] = JSON.parse(text) as Json;
    } catch {
      raw[k] = text;
    }
  }
  if (action.params === undefined) return raw;
  const known = declaredKeys(action.params);
  const unknown = known === undefined ? [] : Object.keys(set).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    const names = unknown.map((k) => `"${k}"`).join(', ');
    throw new AgentError('AGENT_ERR_ACTION', `action "${name}" has no parameter ${names}; its parameters are ${known!.sort().join(', ') || '(none)'}`);
  }
  const r = action.params.safeParse(raw);
  if (r.success) return r.data as Record<string, Json>;
  // Each key the schema refused as JSON is given as its text instead where that satisfies the schema for it.
  const keysIn = (issues: readonly { path: readonly PropertyKey[] }[]) => new Set(issues.map((i) => String(i.path[0])));
  const best: Record<string, Json> = { ...raw };
  for (const k of keysIn(r.error.issues)) {
    const text = set[k];
    if (text === undefined) continue;
    const trial = action.params.safeParse({ ...best, [k]: text });
    if (trial.success || !keysIn(trial.error.issues).has(k)) best[k] = text;
  }
  const again = action.params.safeParse(best);
  if (again.success) return again.data as Record<string, Json>;
  throw new AgentError('AGENT_ERR_ACTION', `invalid parameters for action "${name}": ${formatIssues(again.error.issues)}`);
}

/** `describeActions` for `rhizome actions SERVICE`. */
export function describeActions(charm: CharmDefinition): { name: string; description: string }[] {
  return Object.entries(charm.actions ?? {})
    .map(([name, a]) => ({ name, description: a.description ?? '' }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}
