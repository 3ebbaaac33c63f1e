/**
 * `rhizome run UNIT|SERVICE ACTION key=value ...` runs a charm action on one
 * unit or on every live unit of a service (like `juju run`), waits up to
 * `--timeout` seconds, and prints each unit's result or error; `rhizome
 * actions SERVICE` lists them. Parameters are checked by each unit against
 * the action's schema before it runs; a failed action rolls its run back.
 * Exit 1 when any unit failed (AGENT_ERR_ACTION) or did not answer in time
 * (AGENT_ERR_ACTION_TIMEOUT, naming those units: their action may still
 * commit, and `rhizome runs UNIT` shows whether it did). With
 * `--background` (juju run --background) each unit checks the parameters
 * and starts the action, and the command returns; the unit logs the result
 * under the run when it ends.
 */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { AgentError } from '../../errors';
import { formatDuration } from '../logs/format';
import { printJson, table } from '../output';
import { unitClient, type GlobalOptions } from '../target';
import { parseAssignments, serviceUnits } from './config';
import { secondsArg } from '../usage';

interface ActionAnswer {
  unit: string;
  action: string;
  ok: boolean;
  runId?: string;
  result?: unknown;
  error?: string;
  /** No answer within --timeout: the action may still run and commit there. */
  timedOut?: boolean;
  /** --background: started, not waited for. */
  queued?: boolean;
  durationMs: number;
}

/** Seconds, as `--timeout` takes them (Juju's `--wait`): at most an hour, the mesh route's bound. */
const DEFAULT_ACTION_TIMEOUT_S = 60;
const MAX_ACTION_TIMEOUT_S = 3_600;

/** A bad value is a usage error (exit 2), as commander reports its own. */
const parseTimeout = secondsArg(MAX_ACTION_TIMEOUT_S);

const seconds = (ms: number): string => `${Number((ms / 1000).toFixed(1))} s`;

/** Asks one unit to run the action; settles by `timeoutMs` at the latest, with `timedOut` when the unit had not answered. */
async function runOn(g: GlobalOptions, unit: string, action: string, params: Record<string, string>, timeoutMs: number, background: boolean): Promise<ActionAnswer> {
  let timer: NodeJS.Timeout | undefined;
  // Past the timeout the request is dropped, so the CLI exits then rather than when the unit answers.
  const giveUp = new AbortController();
  const late = new Promise<ActionAnswer>((resolve) => {
    timer = setTimeout(() => {
      resolve({ unit, action, ok: false, timedOut: true, error: `no answer within ${seconds(timeoutMs)}`, durationMs: timeoutMs });
      giveUp.abort();
    }, timeoutMs);
  });
  const asked = (async (): Promise<ActionAnswer> => {
    try {
      // The client and the mesh wait a little longer than we do, so the answer that decides is ours.
      const client = (await unitClient(g, unit)).withTimeout(timeoutMs + 5_000);
      return await client.json<ActionAnswer>('POST', `/actions/${encodeURIComponent(action)}`, { params, ...(background ? { background } : {}) }, { timeoutMs: String(Math.min(timeoutMs + 2_000, MAX_ACTION_TIMEOUT_S * 1000)) }, giveUp.signal);
    } catch (err) {
      // Refused before running (unknown action, bad parameters) or unreachable.
      return { unit, action, ok: false, error: (err as Error).message, durationMs: 0 };
    }
  })();
  try {
    return await Promise.race([asked, late]);
  } finally {
    clearTimeout(timer);
  }
}

export function registerActions(program: Command, globals: () => GlobalOptions): void {
  program
    .command('run')
    .argument('<target>', 'a unit (web/0) or a service (web: every live unit)')
    .argument('<action>', 'action name (rhizome actions SERVICE lists them)')
    .argument('[params...]', 'key=value parameters')
    .description("run a charm action on units, as one transaction each; prints each unit's result or error")
    .option('--timeout <seconds>', `how long to wait for every unit's answer (at most ${MAX_ACTION_TIMEOUT_S})`, parseTimeout, DEFAULT_ACTION_TIMEOUT_S)
    .option('--background', "start the action on each unit and return (parameters still checked first); 'rhizome runs UNIT' and 'rhizome logs -i UNIT' show how it ended")
    .action(async (target: string, action: string, words: string[], opts: { timeout: number; background?: boolean }) => {
      const g = globals();
      const params = parseAssignments(words, 'parameter');
      const timeoutMs = opts.timeout * 1000;
      const units = target.includes('/') ? [target] : (await serviceUnits(g, target)).live;
      const answers = await Promise.all(units.map((unit) => runOn(g, unit, action, params, timeoutMs, opts.background === true)));
      if (g.json) printJson(answers);
      else {
        for (const a of answers) {
          if (a.ok && a.queued === true) process.stdout.write(`${a.unit}: ${action} started in the background ('rhizome logs -i ${a.unit}' shows its result)\n`);
          else if (a.ok) {
            process.stdout.write(`${a.unit}: ${action} completed in ${formatDuration(a.durationMs)} (run ${a.runId ?? '?'})\n`);
            if (a.result !== null && a.result !== undefined) process.stdout.write(`${stringify(a.result, { lineWidth: 0 }).trimEnd().replace(/^/gm, '  ')}\n`);
          } else if (a.timedOut) process.stdout.write(`${a.unit}: ${action} did not answer within ${seconds(timeoutMs)}\n`);
          else process.stdout.write(`${a.unit}: ${action} failed: ${a.error ?? 'unknown error'}\n`);
        }
      }
      const late = answers.filter((a) => a.timedOut === true).map((a) => a.unit);
      const failed = answers.filter((a) => !a.ok && a.timedOut !== true);
      const failures = failed.length > 0 ? `${action} failed on ${failed.map((a) => a.unit).join(', ')}${failed.length === 1 ? `: ${failed[0]!.error ?? ''}` : ''}` : '';
      if (late.length > 0) {
        throw new AgentError(
          'AGENT_ERR_ACTION_TIMEOUT',
          `${action}: no answer within ${seconds(timeoutMs)} from ${late.join(', ')}; the action may still commit there ('rhizome runs ${late[0]}' shows whether it did; --timeout S waits longer)${failures ? `; ${failures}` : ''}`,
        );
      }
      if (failures) throw new AgentError('AGENT_ERR_ACTION', failures);
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
