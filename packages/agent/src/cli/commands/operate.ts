/**
 * Commands that change something or talk to the mesh: `relate`, `unrelate`,
 * `event NAME [payload]` (a gossip user event: every agent raises
 * `user.NAME`), `query NAME [payload]`, `resolve UNIT [--skip]` (`logs` has its own file, commands/logs.ts).
 */
import { type Command, InvalidArgumentError } from 'commander';
import type { Json } from '@rhizome/engine';
import { MAX_PAYLOAD_DEPTH, nestsDeeperThan } from '@rhizome/gossip';
import { UsageError } from '../usage';
import { relate } from '../../deploy/relate';
import type { QueryStreamEvent } from '../../unit/api';
import { formatDuration } from '../logs/format';
import { printJson } from '../output';
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
    throw new UsageError(`payload is not valid JSON (${(err as Error).message}); quote strings as JSON ('"text"') or pass --raw to send the text as a string`, 'AGENT_ERR_BAD_OPTIONS');
  }
  if (nestsDeeperThan(value, MAX_PAYLOAD_DEPTH)) {
    throw new UsageError(`payload nests deeper than ${MAX_PAYLOAD_DEPTH} levels of arrays/objects (the gossip wire's limit); flatten it`, 'AGENT_ERR_BAD_OPTIONS');
  }
  return value;
}

/**
 * `query --timeout`: Serf's durations (`2s`, `500ms`); a bare number is
 * milliseconds, as this flag always took. Bounded by what the agent accepts
 * (10 ms to 60 s). A bad value is a usage error (exit 2).
 */
function parseQueryTimeout(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text.trim());
  const ms = m ? Math.round(Number(m[1]) * (m[2] === 's' ? 1000 : 1)) : Number.NaN;
  if (!(ms >= 10 && ms <= 60_000)) throw new InvalidArgumentError('takes a duration from 10ms to 60s, e.g. 2s or 500ms');
  return ms;
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
        else {
          const r = result as { id?: string; already?: boolean };
          process.stdout.write(r.already ? `${a} and ${b} are already related (${r.id ?? ''}): nothing changed\n` : `${remove ? 'unrelated' : 'related'} ${a} ${b} (${r.id ?? ''})\n`);
        }
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
      const r = await client.json<{ name: string; ltime: number; queuedTo?: number }>('POST', '/event', { name, ...(value !== undefined ? { payload: value } : {}) });
      if (g.json) printJson(r);
      else process.stdout.write(`event ${name} (ltime ${r.ltime}) queued to ${r.queuedTo ?? '?'} member(s); gossip carries it to the rest\n`);
    });

  program
    .command('query')
    .argument('<name>', 'query name')
    .argument('[payload]', 'payload (JSON; with --raw, any text sent as a string)')
    .option('--raw', 'send the payload text as a JSON string')
    .option('--timeout <duration>', 'how long to collect responses: 2s, 500ms (a bare number is milliseconds); at most 60s', parseQueryTimeout, 2_000)
    .description('ask every member; prints acks and responses')
    .action(async (name: string, payload: string | undefined, opts: { timeout: number; raw?: boolean }) => {
      const g = globals();
      const timeoutMs = opts.timeout;
      const value = parsePayload(payload, opts.raw);
      const client = await anyClient(g);
      // Serf's way: each ack and response printed as it arrives, then the totals.
      const acks: string[] = [];
      const responses: { from: string; payload: unknown }[] = [];
      let done: Extract<QueryStreamEvent, { type: 'done' }> | undefined;
      const body = { name, timeoutMs, ...(value !== undefined ? { payload: value } : {}) };
      for await (const e of client.stream<QueryStreamEvent>('/query/stream', { method: 'POST', body })) {
        if (e.type === 'ack') {
          acks.push(e.from);
          if (!g.json) process.stdout.write(`ack from ${e.from} (${formatDuration(e.ms)})\n`);
        } else if (e.type === 'response') {
          responses.push({ from: e.from, payload: e.payload });
          if (!g.json) process.stdout.write(`response from ${e.from} (${formatDuration(e.ms)}): ${JSON.stringify(e.payload)}\n`);
        } else done = e;
      }
      if (g.json) return printJson({ acks, responses, ...(done ? { members: done.members, durationMs: done.ms, complete: done.complete } : {}) });
      const how = done === undefined ? 'the stream ended early' : done.complete ? `every member answered in ${formatDuration(done.ms)}` : `timed out after ${formatDuration(done.ms)}`;
      process.stdout.write(`total: ${acks.length} ack(s), ${responses.length} response(s) of ${done?.members ?? '?'} member(s); ${how}\n`);
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
}
