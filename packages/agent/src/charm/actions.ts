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
      const params = (ctx.event?.payload ?? {}) as Record<string, Json>;
      const value = await action.run(ctx, params, unit());
      results.set(ctx.runId, value === undefined ? null : value);
    },
  }));
}

/** Reads `key=value` texts (JSON when it parses, else the text) and checks them against the action's schema. */
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
  const r = action.params.safeParse(raw);
  if (!r.success) {
    // A text that parsed as JSON (a number-looking id) may be meant as text: try the texts as given.
    const asText = action.params.safeParse({ ...set });
    if (asText.success) return asText.data as Record<string, Json>;
    throw new AgentError('AGENT_ERR_ACTION', `invalid parameters for action "${name}": ${formatIssues(r.error.issues)}`);
  }
  return r.data as Record<string, Json>;
}

/** `describeActions` for `rhizome actions SERVICE`. */
export function describeActions(charm: CharmDefinition): { name: string; description: string }[] {
  return Object.entries(charm.actions ?? {})
    .map(([name, a]) => ({ name, description: a.description ?? '' }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}
