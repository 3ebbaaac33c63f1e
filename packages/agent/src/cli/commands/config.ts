/**
 * `rhizome config SERVICE` shows a service's options (default, current
 * value, type, description); `rhizome config SERVICE key=value ...` changes
 * them on every unit of the service, like `juju config`:
 *   1. one unit checks the change (dry run): an unknown key or a value the
 *      charm's schema refuses is an error, and no unit changes;
 *   2. each live unit (reached through the local agent, over the mesh when
 *      it is elsewhere) takes it: one `config.changed` run per unit;
 *   3. the deployment record keeps the options, so units started later
 *      (add-unit, start) have them;
 *   4. it waits until every unit committed the new config and is idle.
 */
import type { Command } from 'commander';
import type { Json } from '@rhizome/engine';
import type { ConfigOption } from '../../charm/config-options';
import { updateDeployment, rhizomeHome } from '../../deploy/deployment';
import { AgentError } from '../../errors';
import { formatDuration } from '../logs/format';
import { printJson, table } from '../output';
import { fetchClusterStatus } from '../status/fetch';
import { resolveTarget, unitClient, type GlobalOptions } from '../target';
import { secondsArg, UsageError } from '../usage';

/** `key=value` words into a map; throws naming the first malformed one. */
export function parseAssignments(words: readonly string[], what = 'option'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const w of words) {
    const i = w.indexOf('=');
    if (i <= 0) throw new UsageError(`"${w}" is not ${what}=value (e.g. port=8080)`, 'AGENT_ERR_BAD_OPTIONS');
    const key = w.slice(0, i);
    if (key in out) throw new UsageError(`${what} "${key}" is given twice; give each once`, 'AGENT_ERR_BAD_OPTIONS');
    out[key] = w.slice(i + 1);
  }
  return out;
}

/** The service's units, live ones first (from the cluster status: every host). */
export async function serviceUnits(g: GlobalOptions, service: string): Promise<{ live: string[]; down: string[] }> {
  const cluster = await fetchClusterStatus(g);
  const units = cluster.units.filter((u) => u.service === service);
  if (units.length === 0) {
    const services = [...new Set(cluster.units.map((u) => u.service))].sort();
    throw new AgentError('AGENT_ERR_UNKNOWN_UNIT', `no service "${service}"; the services are ${services.join(', ') || '(none)'}`);
  }
  const live = units.filter((u) => u.up).map((u) => u.unit);
  if (live.length === 0) throw new AgentError('AGENT_ERR_NOT_RUNNING', `no unit of ${service} is running; 'rhizome start UNIT' restarts one`);
  return { live, down: units.filter((u) => !u.up).map((u) => u.unit) };
}

function show(v: Json | undefined): string {
  return v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
}

export function registerConfig(program: Command, globals: () => GlobalOptions): void {
  program
    .command('config')
    .argument('<service>', 'service')
    .argument('[assignments...]', 'key=value to change (none: show the options)')
    .option('--timeout <seconds>', 'how long to wait for every unit to take it', secondsArg(86_400, '300'), 120)
    .option('--no-wait', 'do not wait for the units to converge')
    .description("show a service's options, or change them on every unit (each runs config.changed once)")
    .action(async (service: string, assignments: string[], opts: { timeout: number; wait?: boolean }) => {
      const g = globals();
      // Malformed words are bad usage, refused before any agent is asked.
      const set = parseAssignments(assignments);
      const { live, down } = await serviceUnits(g, service);
      const first = await unitClient(g, live[0]!);
      if (assignments.length === 0) {
        const r = await first.get<{ charm: string; options: ConfigOption[] }>('/config');
        if (g.json) return printJson(r);
        process.stdout.write(`${service} (charm ${r.charm})\n`);
        process.stdout.write(`${table(['Option', 'Type', 'Default', 'Value', 'Description'], r.options.map((o) => [o.key, o.type, show(o.default), show(o.value) + (o.value !== undefined && JSON.stringify(o.value) !== JSON.stringify(o.default) ? ' *' : ''), o.description ?? '']))}\n`);
        process.stdout.write('* set by the operator (differs from the default)\n');
        return;
      }
      const seconds = opts.timeout;
      // 1. checked once, before anything changes
      const plan = await first.json<{ changed: string[]; config: Record<string, Json> }>('POST', '/config', { set, dryRun: true });
      if (plan.changed.length === 0) {
        if (g.json) return printJson({ service, changed: [], units: [] });
        process.stdout.write(`${service}: nothing to change (${Object.keys(set).join(', ')} already set so)\n`);
        return;
      }
      // Units already in error: the change queues behind their failed run, which is no news of this change's.
      type EngineStatus = { engine: { state: string; queued: number; error?: { message: string; handler?: string; event?: string } } };
      const before = new Map<string, string>();
      await Promise.all(
        live.map(async (unit) => {
          const st = await (await unitClient(g, unit)).get<EngineStatus>('/status');
          if (st.engine.state === 'error') before.set(unit, st.engine.error?.message ?? '');
        }),
      );
      // 2. every live unit
      const started = Date.now();
      const results = await Promise.all(live.map(async (unit) => ({ unit, ...(await (await unitClient(g, unit)).json<{ changed: string[]; config: Record<string, Json> }>('POST', '/config', { set })) })));
      // 3. the record, for units started later
      const t = await resolveTarget(g);
      if (t.kind === 'deployment') {
        await updateDeployment(rhizomeHome(g.home), t.deployment.name, (d) => {
          for (const u of Object.values(d.units)) {
            if (u.service !== service) continue;
            const options = { ...u.options };
            for (const k of plan.changed) options[k] = plan.config[k]!;
            (u as { options: Record<string, Json> }).options = options;
          }
        });
      }
      // 4. converged: each unit committed the new config and is idle
      if (opts.wait !== false) {
        const deadline = started + seconds * 1000;
        const pending = new Set(live);
        while (pending.size > 0) {
          for (const unit of [...pending]) {
            const c = await unitClient(g, unit);
            const [facts, status] = await Promise.all([c.get<Record<string, Json>>('/facts'), c.get<EngineStatus>('/status')]);
            if (status.engine.state === 'error') {
              const message = status.engine.error?.message ?? '';
              if (before.get(unit) === message) {
                throw new AgentError(
                  'AGENT_ERR_UNIT_ERROR',
                  `${unit} was already in error (${message}); the new config waits behind that failed run: 'rhizome resolve ${unit}' retries it, with the new config, or 'rhizome resolve ${unit} --skip' drops it`,
                );
              }
              throw new AgentError('AGENT_ERR_UNIT_ERROR', `${unit} is in error after the config change: ${message}; fix it, then 'rhizome resolve ${unit}'`);
            }
            const want = results.find((r) => r.unit === unit)!.config;
            if (JSON.stringify(facts['config']) === JSON.stringify(want) && status.engine.state === 'idle' && status.engine.queued === 0) pending.delete(unit);
          }
          if (pending.size === 0) break;
          if (Date.now() > deadline) throw new AgentError('AGENT_ERR_DEPLOY', `not every unit took the new config within ${seconds} s: still waiting for ${[...pending].join(', ')}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      const took = Date.now() - started;
      if (g.json) return printJson({ service, changed: plan.changed, units: live, down, tookMs: took });
      process.stdout.write(`${service}: ${plan.changed.map((k) => `${k}=${show(plan.config[k])}`).join(' ')} on ${live.join(', ')}${opts.wait !== false ? ` (converged in ${formatDuration(took)})` : ''}\n`);
      if (down.length > 0) process.stdout.write(`${down.join(', ')} ${down.length > 1 ? 'are' : 'is'} down: ${down.length > 1 ? 'they take' : 'it takes'} the new options when started\n`);
    });
}
