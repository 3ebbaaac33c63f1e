/**
 * Control routes that reach past this agent, over the encrypted mesh (see
 * mesh/remote-control.ts): the whole cluster's status, any unit's status,
 * facts, runs, logs and resolve, and cluster-wide key operations. The API
 * itself stays on loopback; these let a CLI on any host see every unit.
 *
 *   GET  /cluster/status?timeoutMs=N   every agent's status: { label?, units: [{ unit, service, up, status?, error?, address }], tookMs }
 *   GET  /units/:unit/status | info | facts | runs
 *   POST /units/:unit/resolve          { skip?: boolean }
 *   GET  /units/:unit/actions, POST /units/:unit/actions/:name?timeoutMs=N { params? }   `rhizome run` on any unit (waits N ms, default 60 s, at most 1 h)
 *   GET  /units/:unit/config, POST /units/:unit/config { set, dryRun? }   `rhizome config` on any unit
 *   GET  /units/:unit/logs             NDJSON, as GET /logs (run, level, replay, follow); a remote follow polls
 *   POST /keys                         { operation: list|install|use|remove, key? }: serf keys semantics
 */
import * as z from 'zod';
import type { AgentApi } from '../unit/api';
import { formatIssues } from '../config';
import { AgentError, ControlError } from '../errors';
import type { LogRecord } from '../log/log-tail';
import { logStreamRoute, parseLogStreamQuery } from './log-route';
import type { ControlRequest, ControlRoutes, StreamRoute } from './server';

const keysBody = z.discriminatedUnion('operation', [
  z.strictObject({ operation: z.literal('list') }),
  z.strictObject({ operation: z.enum(['install', 'use', 'remove']), key: z.string().min(1).max(100) }),
]);
const resolveBody = z.strictObject({ skip: z.boolean().optional() }).optional();
const actionBody = z.strictObject({ params: z.record(z.string().min(1).max(128), z.string().max(1024)).optional(), background: z.boolean().optional() });
const configBody = z.strictObject({ set: z.record(z.string().min(1).max(128), z.string().max(1024)), dryRun: z.boolean().optional() });

/** How often a remote `logs --follow` asks for new lines. */
const REMOTE_FOLLOW_INTERVAL_MS = 1_000;

function timeoutOf(req: ControlRequest): number | undefined {
  const t = req.query.get('timeoutMs');
  if (t === null) return undefined;
  if (!/^\d{2,5}$/.test(t) || Number(t) > 60_000) throw new ControlError('AGENT_ERR_BAD_REQUEST', 400, '`timeoutMs` must be a number of milliseconds in 10..60000');
  return Number(t);
}

/** An action may take long: its caller (`rhizome run --timeout`) says how long to wait, up to an hour. */
const ACTION_TIMEOUT_MS = Object.freeze({ default: 60_000, max: 3_600_000 });

function actionTimeoutOf(req: ControlRequest): number {
  const t = req.query.get('timeoutMs');
  if (t === null) return ACTION_TIMEOUT_MS.default;
  if (!/^\d{2,7}$/.test(t) || Number(t) > ACTION_TIMEOUT_MS.max) {
    throw new ControlError('AGENT_ERR_BAD_REQUEST', 400, `\`timeoutMs\` must be a number of milliseconds in 10..${ACTION_TIMEOUT_MS.max}`);
  }
  return Number(t);
}

function unitParam(req: ControlRequest): string {
  const unit = req.params['unit'] ?? '';
  if (!/^[a-z][a-z0-9-]{0,62}\/\d{1,6}$/.test(unit)) throw new ControlError('AGENT_ERR_BAD_REQUEST', 400, `'${unit}' is not a unit name (service/N, with the slash URL-encoded as %2F)`);
  return unit;
}

/** Logs of a remote unit: its recent lines, then (follow) new ones by polling over the mesh. */
function remoteLogs(agent: AgentApi): StreamRoute {
  const local = logStreamRoute(agent.logTail);
  return {
    kind: 'stream',
    handler: (req) => {
      const unit = unitParam(req);
      if (unit === agent.unit) return local.handler(req);
      const q = parseLogStreamQuery(req.query);
      const filter = { ...(q.runId !== undefined ? { runId: q.runId } : {}), ...(q.minLevel !== undefined ? { minLevel: q.minLevel } : {}) };
      return (async function* (): AsyncGenerator<LogRecord> {
        const first = (await agent.remote.call(unit, 'logs', { ...filter, ...(q.replay !== undefined ? { limit: q.replay } : {}) })) as LogRecord[];
        yield* first;
        if (!q.follow) return;
        // Lines are ordered by time; at the boundary time, skip the ones already sent.
        let since = first.at(-1)?.time ?? Date.now();
        let seenAtSince = new Set(first.filter((r) => r.time === since).map((r) => JSON.stringify(r)));
        while (!req.signal.aborted) {
          await new Promise<void>((r) => {
            const t = setTimeout(r, REMOTE_FOLLOW_INTERVAL_MS);
            req.signal.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
          });
          if (req.signal.aborted) return;
          const more = (await agent.remote.call(unit, 'logs', { ...filter, since })) as LogRecord[];
          const fresh = more.filter((r) => !(r.time === since && seenAtSince.has(JSON.stringify(r))));
          yield* fresh;
          if (fresh.length > 0) {
            const last = fresh.at(-1)!.time;
            seenAtSince = new Set([...(last === since ? seenAtSince : []), ...fresh.filter((r) => r.time === last).map((r) => JSON.stringify(r))]);
            since = last;
          }
        }
      })();
    },
  };
}

export function meshControlRoutes(agent: AgentApi): ControlRoutes {
  return {
    'GET /cluster/status': (req) => agent.remote.clusterStatus(timeoutOf(req)),
    'GET /units/:unit/status': (req) => agent.remote.call(unitParam(req), 'status', {}, timeoutOf(req)),
    'GET /units/:unit/info': (req) => agent.remote.call(unitParam(req), 'info', {}, timeoutOf(req)),
    'GET /units/:unit/facts': (req) => agent.remote.call(unitParam(req), 'facts', {}, timeoutOf(req)),
    'GET /units/:unit/runs': (req) => agent.remote.call(unitParam(req), 'runs', {}, timeoutOf(req)),
    'POST /units/:unit/resolve': (req) => {
      const r = resolveBody.safeParse(req.body);
      if (!r.success) throw new AgentError('AGENT_ERR_BAD_REQUEST', `bad request body: ${formatIssues(r.error.issues)}; expected { "skip": false }`);
      return agent.remote.call(unitParam(req), 'resolve', { skip: r.data?.skip === true });
    },
    'GET /units/:unit/logs': remoteLogs(agent),
    'GET /units/:unit/actions': (req) => agent.remote.call(unitParam(req), 'actions', {}, timeoutOf(req)),
    'POST /units/:unit/actions/:name': (req) => {
      const r = actionBody.safeParse(req.body ?? {});
      if (!r.success) throw new AgentError('AGENT_ERR_BAD_REQUEST', `bad request body: ${formatIssues(r.error.issues)}; expected { "params": { "to": "/tmp/x" } }`);
      return agent.remote.call(unitParam(req), 'action', { name: req.params['name'] ?? '', set: r.data.params ?? {}, background: r.data.background === true }, actionTimeoutOf(req));
    },
    'GET /units/:unit/config': (req) => agent.remote.call(unitParam(req), 'config', {}, timeoutOf(req)),
    'POST /units/:unit/config': (req) => {
      const r = configBody.safeParse(req.body);
      if (!r.success) throw new AgentError('AGENT_ERR_BAD_REQUEST', `bad request body: ${formatIssues(r.error.issues)}; expected { "set": { "port": "8080" }, "dryRun": false }`);
      return agent.remote.call(unitParam(req), 'configure', { set: r.data.set, dryRun: r.data.dryRun === true });
    },
    'POST /keys': async (req) => {
      const r = keysBody.safeParse(req.body);
      if (!r.success) throw new AgentError('AGENT_ERR_BAD_REQUEST', `bad request body: ${formatIssues(r.error.issues)}; expected { "operation": "install", "key": "<base64>" }`);
      const b = r.data;
      const keys = agent.node.keys;
      try {
        return b.operation === 'list' ? await keys.list() : await keys[b.operation](b.key);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        throw new AgentError('AGENT_ERR_KEYS', `keys ${b.operation}: ${(err as Error).message}${typeof code === 'string' ? ` (${code})` : ''}`, { cause: err });
      }
    },
  };
}
