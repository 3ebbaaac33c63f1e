/**
 * `rhizome status [SELECTOR...] [--state S] [--format F] [--watch [SECONDS]]`:
 * the cluster like `juju status`. Selectors are service or unit names;
 * `--state` keeps units whose agent or workload state matches (`error`,
 * `blocked`, `down`...). `--watch` redraws in place on a TTY (log-update)
 * and prints a new frame when something changed otherwise.
 */
import type { Command } from 'commander';
import { AgentError } from '../../errors';
import { choiceArg, wholeArg } from '../usage';
import { InvalidArgumentError } from 'commander';
import { fetchClusterStatus } from '../status/fetch';
import { selectStatus, summarizeStatus, type StatusSummary } from '../status/model';
import { renderStatus, STATUS_FORMATS, wantsColor, type StatusFormat } from '../status/render';
import type { GlobalOptions } from '../target';

interface StatusOptions {
  state?: string[];
  format?: StatusFormat;
  watch?: number | boolean;
  count?: number;
}

/** `--watch` seconds between redraws. */
function watchSeconds(text: string): number {
  const s = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !(s >= 0.2 && s <= 3600)) throw new InvalidArgumentError('takes seconds between redraws, 0.2 to 3600');
  return s;
}

/** Every `--state` value, comma lists allowed. */
function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

/** `--format`, or json for the global `--json`. */
export function statusFormat(g: GlobalOptions, format: StatusFormat | undefined): StatusFormat {
  return format ?? (g.json ? 'json' : 'table');
}

function checkSelectors(s: StatusSummary, patterns: readonly string[]): void {
  for (const p of patterns) {
    if (s.units.some((u) => u.unit === p || u.service === p)) continue;
    const known = [...s.services.map((x) => x.name), ...s.units.map((u) => u.unit)].join(', ') || '(none)';
    throw new AgentError('AGENT_ERR_UNKNOWN_UNIT', `no service or unit "${p}" in this deployment; known: ${known}`);
  }
}

export function registerStatus(program: Command, globals: () => GlobalOptions): void {
  program
    .command('status')
    .argument('[selectors...]', 'services or units to show (default: all)')
    .option('--state <state>', 'only units in this agent or workload state (error, blocked, down...; repeatable, or comma-separated)', collect)
    .option('--format <format>', `output: ${STATUS_FORMATS.join(', ')} (plain: no borders or colour, for grep/awk)`, choiceArg(STATUS_FORMATS))
    .option('--watch [seconds]', 'redraw every few seconds (default 2) until Ctrl-C', watchSeconds)
    .option('--count <n>', 'with --watch: stop after N frames', wholeArg(1, 1_000_000, 'a number of frames'))
    .description('services, units (agent, workload, address, machine, leader *), relations and errors, like juju status')
    .action(async (selectors: string[], opts: StatusOptions) => {
      const g = globals();
      const format = statusFormat(g, opts.format);
      const color = format === 'table' && wantsColor(process.stdout);
      const frame = async (): Promise<string> => {
        const summary = summarizeStatus(await fetchClusterStatus(g));
        checkSelectors(summary, selectors);
        return await renderStatus(selectStatus(summary, { patterns: selectors, states: opts.state ?? [] }), { format, color, now: new Date() });
      };
      if (opts.watch === undefined || opts.watch === false) {
        process.stdout.write(`${await frame()}\n`);
        return;
      }
      const seconds = opts.watch === true ? 2 : opts.watch;
      await watch(frame, seconds * 1000, opts.count ?? Infinity);
    });
}

/** Redraws until SIGINT/SIGTERM or `count` frames; a failed fetch is shown in the frame, not fatal. */
async function watch(frame: () => Promise<string>, intervalMs: number, count: number): Promise<void> {
  const tty = process.stdout.isTTY === true;
  // Loaded only for --watch on a terminal: a plain `status` stays quick to start.
  const live = tty ? (await import('log-update')).createLogUpdate(process.stdout) : undefined;
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let last = '';
  try {
    for (let i = 0; i < count && !stop.signal.aborted; i++) {
      let text: string;
      try {
        text = await frame();
      } catch (err) {
        text = `error: ${(err as Error).message}`;
      }
      if (live) live(text);
      else if (text.replace(/\d\d:\d\d:\d\dZ/, '') !== last) process.stdout.write(`${i > 0 ? '\n' : ''}${text}\n`);
      last = text.replace(/\d\d:\d\d:\d\dZ/, '');
      if (i + 1 >= count) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, intervalMs);
        stop.signal.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        }, { once: true });
      });
    }
  } finally {
    live?.done();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
