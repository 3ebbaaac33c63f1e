/**
 * Commands that change something or talk to the mesh: `relate`, `unrelate`,
 * `event NAME [payload]` (a gossip user event: every agent raises
 * `user.NAME`), `query NAME [payload]`, `resolve UNIT [--skip]`, and
 * `logs [UNIT] [--follow]`.
 */
import type { Command } from 'commander';
import type { Json } from '@rhizome/engine';
import { MAX_PAYLOAD_DEPTH, nestsDeeperThan } from '@rhizome/gossip';
import type { LogRecord } from '../../log/log-tail';
import { AgentError } from '../../errors';
import { clientFor, liveUnits } from '../../deploy/deployment';
import { relate } from '../../deploy/deploy';
import { printJson, table } from '../output';
import { anyClient, resolveTarget, unitClient, type GlobalOptions } from '../target';

/**
 * A payload argument: JSON unless `--raw` (then the text as a string). Text
 * that is not JSON is refused rather than silently sent as a string, and the
 * wire's depth limit is applied here, before anything is sent (the agent
 * checks the size against its profile's limits and answers 400 naming them).
 */
function parsePayload(text: string | undefined, raw: boolean | undefined): Json | undefined {
  if (text === undefined) return undefined;
  if (raw === true) return text;
  let value: Json;
  try {
    value = JSON.parse(text) as Json;
  } catch (err) {
    throw new AgentError(
      'AGENT_ERR_BAD_OPTIONS',
      `payload is not valid JSON (${(err as Error).message}); quote strings as JSON ('"text"') or pass --raw to send the text as a string`,
    );
  }
  if (nestsDeeperThan(value, MAX_PAYLOAD_DEPTH)) {
    throw new AgentError('AGENT_ERR_BAD_OPTIONS', `payload nests deeper than ${MAX_PAYLOAD_DEPTH} levels of arrays/objects (the gossip wire's limit); flatten it`);
  }
  return value;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

function formatLog(r: LogRecord): string {
  const time = new Date(r.time).toISOString().slice(11, 23);
  const { level, time: _t, msg, unit, runId, pid: _p, ...rest } = r;
  const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
  return `${time} ${(LEVEL_NAMES[level] ?? String(level)).padEnd(5)} ${unit ?? ''}${runId ? ` [${runId}]` : ''} ${msg ?? ''}${extra}`;
}

export function registerOperate(program: Command, globals: () => GlobalOptions): void {
  for (const [name, remove] of [['relate', false], ['unrelate', true]] as const) {
    program
      .command(name)
      .argument('<a>', 'SERVICE:ENDPOINT')
      .argument('<b>', 'SERVICE:ENDPOINT')
      .description(remove ? 'remove a relation (every unit on it sees broken)' : 'relate two service endpoints (checked, then spread to every agent)')
      .action(async (a: string, b: string) => {
        const g = globals();
        const t = await resolveTarget(g);
        let result: unknown;
        if (t.kind === 'single') result = await t.client.json('POST', remove ? '/unrelate' : '/relate', { a, b });
        else {
          result = await relate(t.deployment, a, b, 15_000, remove);
          if (!remove && !t.deployment.relations.some(([x, y]) => (x === a && y === b) || (x === b && y === a))) t.deployment.relations.push([a, b]);
          if (remove) t.deployment.relations = t.deployment.relations.filter(([x, y]) => !((x === a && y === b) || (x === b && y === a)));
          const { writeDeployment } = await import('../../deploy/deployment');
          await writeDeployment(t.deployment);
        }
        if (g.json) printJson(result);
        else process.stdout.write(`${remove ? 'unrelated' : 'related'} ${a} ${b} (${(result as { id?: string }).id ?? ''})\n`);
      });
  }

  program
    .command('event')
    .argument('<name>', 'event name')
    .argument('[payload]', 'payload (JSON; with --raw, any text sent as a string)')
    .option('--raw', 'send the payload text as a JSON string')
    .description('send a user event to every member; each agent raises user.NAME')
    .action(async (name: string, payload: string | undefined, opts: { raw?: boolean }) => {
      const g = globals();
      const value = parsePayload(payload, opts.raw);
      const client = await anyClient(g);
      const r = await client.json('POST', '/event', { name, ...(value !== undefined ? { payload: value } : {}) });
      if (g.json) printJson(r);
      else process.stdout.write(`event ${name} sent\n`);
    });

  program
    .command('query')
    .argument('<name>', 'query name')
    .argument('[payload]', 'payload (JSON; with --raw, any text sent as a string)')
    .option('--raw', 'send the payload text as a JSON string')
    .option('--timeout <ms>', 'how long to collect responses', '2000')
    .description('ask every member; prints acks and responses')
    .action(async (name: string, payload: string | undefined, opts: { timeout: string; raw?: boolean }) => {
      const g = globals();
      const timeoutMs = Number(opts.timeout);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 10) throw new AgentError('AGENT_ERR_BAD_OPTIONS', '--timeout must be milliseconds (>= 10)');
      const value = parsePayload(payload, opts.raw);
      const client = await anyClient(g);
      const r = await client.json<{ acks: string[]; responses: { from: string; payload: unknown }[] }>('POST', '/query', { name, timeoutMs, ...(value !== undefined ? { payload: value } : {}) });
      if (g.json) return printJson(r);
      process.stdout.write(`${r.acks.length} ack(s), ${r.responses.length} response(s)\n`);
      if (r.responses.length > 0) process.stdout.write(`${table(['From', 'Response'], r.responses.map((x) => [x.from, JSON.stringify(x.payload)]))}\n`);
    });

  program
    .command('resolve')
    .argument('<unit>', 'unit in error')
    .option('--skip', 'drop the failed event instead of retrying it')
    .description('retry (or skip) the failed run of a unit in error')
    .action(async (unit: string, opts: { skip?: boolean }) => {
      const g = globals();
      const client = await unitClient(g, unit);
      const r = await client.json<{ state: string }>('POST', '/resolve', { skip: opts.skip === true });
      if (g.json) printJson(r);
      else process.stdout.write(`${unit}: ${opts.skip ? 'skipped' : 'retrying'} (engine ${r.state})\n`);
    });

  program
    .command('logs')
    .argument('[unit]', 'unit (default: every live unit)')
    .option('-f, --follow', 'keep streaming new lines')
    .option('--run <id>', 'only the lines of one run')
    .option('--level <level>', 'minimum level (info, warn...)')
    .option('-n, --lines <n>', 'recent lines to show first', '50')
    .description("a unit's log lines (replay, then --follow)")
    .action(async (unit: string | undefined, opts: { follow?: boolean; run?: string; level?: string; lines: string }) => {
      const g = globals();
      const query: Record<string, string> = { replay: opts.lines, follow: opts.follow ? 'true' : 'false' };
      if (opts.run) query['run'] = opts.run;
      if (opts.level) query['level'] = opts.level;
      const t = await resolveTarget(g);
      const clients = unit !== undefined ? [await unitClient(g, unit)] : t.kind === 'single' ? [t.client] : await Promise.all(liveUnits(t.deployment).map((u) => clientFor(u, 10_000)));
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      await Promise.all(
        clients.map(async (c) => {
          try {
            for await (const r of c.stream<LogRecord>('/logs', { query, signal: abort.signal })) {
              process.stdout.write(g.json ? `${JSON.stringify(r)}\n` : `${formatLog(r)}\n`);
            }
          } catch (err) {
            if (!abort.signal.aborted) throw err;
          }
        }),
      );
    });
}
