/**
 * `rhizome logs [UNIT] [--include X]... [--exclude X]... [--level L] [-n N |
 * --replay] [-f] [--run ID]`: like `juju debug-log`, the log lines of every
 * unit (or those included: unit or service names) merged by time. Without
 * `--follow` it prints the last N lines of all units together (`--replay`:
 * all that the agents keep) and ends; with `--follow` it then streams new
 * lines, held back a moment so that units' lines interleave by time.
 */
import type { Command } from 'commander';
import type { ControlClient } from '../../control/client';
import { clientFor, liveUnits } from '../../deploy/deployment';
import { AgentError } from '../../errors';
import { wholeArg } from '../usage';
import type { LogRecord } from '../../log/log-tail';
import { formatLogRecord, mergeByTime, selectUnits, TimeOrderedBuffer } from '../logs/format';
import { wantsColor } from '../status/render';
import { resolveTarget, type GlobalOptions } from '../target';

interface LogsOptions {
  follow?: boolean;
  run?: string;
  level?: string;
  lines: number;
  replay?: boolean;
  include?: string[];
  exclude?: string[];
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

/** How long live lines are held so that several units' lines come out in time order. */
const FOLLOW_HOLD_MS = 300;

interface Source {
  unit: string;
  client: ControlClient;
}

async function sources(g: GlobalOptions, include: string[], exclude: string[]): Promise<{ sources: Source[]; filter: (r: LogRecord) => boolean }> {
  const t = await resolveTarget(g);
  if (t.kind === 'single') {
    // One agent answers for its whole mesh: the other live units' lines come through it, over the mesh.
    const info = await t.client.get<{ unit: string }>('/info');
    const members = await t.client.get<{ name: string; status: string; tags: Record<string, string> }[]>('/members');
    const all = [...new Set([info.unit, ...members.filter((m) => m.tags['svc'] !== undefined && (m.status === 'alive' || m.status === 'suspect')).map((m) => m.name)])];
    for (const name of [...include, ...exclude]) {
      if (!all.some((u) => u === name || u.split('/')[0] === name)) {
        throw new AgentError('AGENT_ERR_UNKNOWN_UNIT', `no live service or unit "${name}" in the mesh of ${info.unit}; its live units are ${all.sort().join(', ')}`);
      }
    }
    // Every unit of the mesh, as from the deploying host (juju debug-log): status on any host shows them all too.
    const wanted = selectUnits(all, include, exclude);
    return { sources: wanted.map((u) => ({ unit: u, client: u === info.unit ? t.client : t.client.forUnit(u) })), filter: () => true };
  }
  const d = t.deployment;
  const all = Object.keys(d.units);
  for (const name of [...include, ...exclude]) {
    if (!all.some((u) => u === name || u.split('/')[0] === name)) {
      throw new AgentError('AGENT_ERR_UNKNOWN_UNIT', `no service or unit "${name}" in deployment "${d.name}"; its units are ${all.sort().join(', ') || '(none)'}`);
    }
  }
  const wanted = new Set(selectUnits(all, include, exclude));
  const live = liveUnits(d).filter((u) => wanted.has(u.unit));
  for (const u of Object.values(d.units)) {
    if (wanted.has(u.unit) && !live.includes(u)) process.stderr.write(`${u.unit} is not running; its past log is in ${u.dataDir}/agent.log\n`);
  }
  return { sources: await Promise.all(live.map(async (u) => ({ unit: u.unit, client: await clientFor(u, 10_000) }))), filter: () => true };
}

export function registerLogs(program: Command, globals: () => GlobalOptions): void {
  program
    .command('logs')
    .argument('[unit]', 'one unit (same as --include UNIT)')
    .option('-i, --include <name>', 'only these units or services (repeatable)', collect)
    .option('-x, --exclude <name>', 'not these units or services (repeatable)', collect)
    .option('--level <level>', 'minimum level: trace, debug, info, warn, error')
    .option('-n, --lines <n>', 'recent lines to show first (all units together)', wholeArg(0, 1_000_000, 'a count of lines'), 50)
    .option('--replay', 'show every line the agents still keep, not just the last -n')
    .option('-f, --follow', 'keep streaming new lines')
    .option('--run <id>', 'only the lines of one run')
    .description('log lines of every unit merged by time, like juju debug-log (exec and Ansible output under their run)')
    .action(async (unit: string | undefined, opts: LogsOptions) => {
      const g = globals();
      const lines = opts.lines;
      const include = unit !== undefined ? [...(opts.include ?? []), unit] : (opts.include ?? []);
      const { sources: srcs, filter } = await sources(g, include, opts.exclude ?? []);
      const query: Record<string, string> = { follow: opts.follow ? 'true' : 'false' };
      if (!opts.replay) query['replay'] = String(lines);
      if (opts.run) query['run'] = opts.run;
      if (opts.level) query['level'] = opts.level;
      const color = !g.json && wantsColor(process.stdout);
      const print = (r: LogRecord): void => {
        if (!filter(r)) return;
        process.stdout.write(g.json ? `${JSON.stringify(r)}\n` : `${formatLogRecord(r, { color })}\n`);
      };
      const lastN = (records: LogRecord[]): LogRecord[] => (opts.replay ? records : records.slice(Math.max(0, records.length - lines)));

      if (!opts.follow) {
        const lists = await Promise.all(
          srcs.map(async (s) => {
            const out: LogRecord[] = [];
            for await (const r of s.client.stream<LogRecord>('/logs', { query })) out.push(r);
            return out;
          }),
        );
        for (const r of lastN(mergeByTime(lists))) print(r);
        return;
      }

      const abort = new AbortController();
      const onSignal = (): void => abort.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const buffer = new TimeOrderedBuffer(FOLLOW_HOLD_MS);
      // The first flush takes the replayed lines of every unit together (the last N of them all).
      let replayed = false;
      const flush = (): void => {
        if (!replayed) {
          replayed = true;
          for (const r of lastN(buffer.release(Date.now()))) print(r);
          return;
        }
        for (const r of buffer.release(Date.now())) print(r);
      };
      const timer = setInterval(flush, 100);
      const firstFlush = setTimeout(flush, FOLLOW_HOLD_MS + 200);
      try {
        await Promise.all(
          srcs.map(async (s) => {
            try {
              for await (const r of s.client.stream<LogRecord>('/logs', { query, signal: abort.signal })) for (const early of buffer.push(r)) print(early);
            } catch (err) {
              if (!abort.signal.aborted) process.stderr.write(`${s.unit}: log stream ended: ${(err as Error).message}\n`);
            }
          }),
        );
      } finally {
        clearInterval(timer);
        clearTimeout(firstFlush);
        replayed = true;
        for (const r of buffer.drain()) print(r);
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
