/**
 * `rhizome run UNIT|SERVICE ACTION key=value ...` runs a charm action on one
 * unit or on every live unit of a service (like `juju run`), waits, and
 * prints each unit's result or error; `rhizome actions SERVICE` lists them.
 * Parameters are checked by each unit against the action's schema before it
 * runs; a failed action rolls its run back and exits 1.
 */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { AgentError } from '../../errors';
import { formatDuration } from '../logs/format';
import { printJson, table } from '../output';
import { unitClient, type GlobalOptions } from '../target';
import { parseAssignments, serviceUnits } from './config';

interface ActionAnswer {
  unit: string;
  action: string;
  ok: boolean;
  runId?: string;
  result?: unknown;
  error?: string;
  durationMs: number;
}

export function registerActions(program: Command, globals: () => GlobalOptions): void {
  program
    .command('run')
    .argument('<target>', 'a unit (web/0) or a service (web: every live unit)')
    .argument('<action>', 'action name (rhizome actions SERVICE lists them)')
    .argument('[params...]', 'key=value parameters')
    .description("run a charm action on units, as one transaction each; prints each unit's result or error")
    .action(async (target: string, action: string, words: string[]) => {
      const g = globals();
      const params = parseAssignments(words, 'parameter');
      const units = target.includes('/') ? [target] : (await serviceUnits(g, target)).live;
      const answers = await Promise.all(
        units.map(async (unit): Promise<ActionAnswer> => {
          try {
            return await (await unitClient(g, unit)).json<ActionAnswer>('POST', `/actions/${encodeURIComponent(action)}`, { params });
          } catch (err) {
            // Refused before running (unknown action, bad parameters) or unreachable.
            return { unit, action, ok: false, error: (err as Error).message, durationMs: 0 };
          }
        }),
      );
      const failed = answers.filter((a) => !a.ok);
      if (g.json) printJson(answers);
      else {
        for (const a of answers) {
          if (a.ok) {
            process.stdout.write(`${a.unit}: ${action} completed in ${formatDuration(a.durationMs)} (run ${a.runId ?? '?'})\n`);
            if (a.result !== null && a.result !== undefined) process.stdout.write(`${stringify(a.result, { lineWidth: 0 }).trimEnd().replace(/^/gm, '  ')}\n`);
          } else process.stdout.write(`${a.unit}: ${action} failed: ${a.error ?? 'unknown error'}\n`);
        }
      }
      if (failed.length > 0) {
        throw new AgentError('AGENT_ERR_ACTION', `${action} failed on ${failed.map((a) => a.unit).join(', ')}${failed.length === 1 ? `: ${failed[0]!.error ?? ''}` : ''}`);
      }
    });

  program
    .command('actions')
    .argument('<service>', 'service')
    .description("a service's charm actions")
    .action(async (service: string) => {
      const g = globals();
      const { live } = await serviceUnits(g, service);
      const r = await (await unitClient(g, live[0]!)).get<{ charm: string; actions: { name: string; description: string }[] }>('/actions');
      if (g.json) return printJson(r);
      if (r.actions.length === 0) process.stdout.write(`${service} (charm ${r.charm}) declares no actions\n`);
      else process.stdout.write(`${table(['Action', 'Description'], r.actions.map((a) => [a.name, a.description]))}\n`);
    });
}
