/**
 * `rhizome status [SELECTOR...] [--state S] [--format F] [--watch [SECONDS]]`:
 * the cluster like `juju status`. Selectors are service or unit names;
 * `--state` keeps units whose agent or workload state matches (`error`,
 * `blocked`, `down`...). `--watch` redraws in place on a TTY (log-update)
 * and prints a new frame when something changed otherwise.
 */
import type { Command } from 'commander';
import { AgentError } from '../../errors';
import { fetchClusterStatus } from '../status/fetch';
import { selectStatus, summarizeStatus, type StatusSummary } from '../status/model';
import { renderStatus, STATUS_FORMATS, wantsColor, type StatusFormat } from '../status/render';
import type { GlobalOptions } from '../target';

interface StatusOptions {
  state?: string[];
  format?: string;
  watch?: string | boolean;
  count?: string;
}

/** Every `--state` value, comma lists allowed. */
function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

/** `--format`, or json for the global `--json`. */
export function statusFormat(g: GlobalOptions, format: string | undefined): StatusFormat {
  if (format === undefined) return g.json ? 'json' : 'table';
  if (!(STATUS_FORMATS as readonly string[]).includes(format)) {
    throw new AgentError('AGENT_ERR_BAD_OPTIONS', `--format must be one of ${STATUS_FORMATS.join(', ')} (got "${format}")`);
  }
  return format as StatusFormat;
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
    .option('--format <format>', `output: ${STATUS_FORMATS.join(', ')} (plain: no borders or colour, for grep/awk)`)
    .option('--watch [seconds]', 'redraw every few seconds (default 2) until Ctrl-C')
    .option('--count <n>', 'with --watch: stop after N frames')
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
      const seconds = opts.watch === true ? 2 : Number(opts.watch);
      if (!(seconds >= 0.2 && seconds <= 3600)) throw new AgentError('AGENT_ERR_BAD_OPTIONS', `--watch takes seconds between redraws, 0.2 to 3600 (got "${String(opts.watch)}")`);
      const count = opts.count === undefined ? Infinity : Number(opts.count);
      if (!(count >= 1) || (count !== Infinity && !Number.isInteger(count))) throw new AgentError('AGENT_ERR_BAD_OPTIONS', `--count must be a whole number of frames (got "${opts.count ?? ''}")`);
      await watch(frame, seconds * 1000, count);
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
