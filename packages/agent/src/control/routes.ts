/**
 * The agent's control routes (served by `createControlServer`, token
 * required). Request bodies are untrusted: each is parsed by one zod schema
 * here, and a bad body is a 400 that says what was expected.
 *
 *   GET  /status      unit, engine state, workload status, failing handler, relations with units and links, member counts
 *   GET  /members     the gossip member list
 *   GET  /facts       every fact
 *   GET  /relations   declarations known to the directory and this unit's views
 *   GET  /runs        run history (reports)
 *   GET  /converged   the local half of convergence (see Agent.converged)
 *   POST /resolve     { skip?: boolean }
 *   POST /gone        { unit }            that unit was removed for good: every agent forgets its links
 *   POST /event       { name, payload? }  a gossip user event; every agent raises `user.<name>`
 *   POST /query       { name, payload?, timeoutMs? }
 *   GET  /actions     the charm's actions; POST /actions/:name { params?: { key: text } } runs one (waits; { ok, result | error })
 *   GET  /config      the charm's options: { options: [{ key, default, value, type, description }] }
 *   POST /config      { set: { key: text }, dryRun? }  checked in full, then one config.changed run
 *   POST /query/stream  the same; NDJSON: each ack and response as it arrives, then { type: 'done', totals }
 *                     (payloads within the wire's limits: MAX_PAYLOAD_DEPTH, the
 *                     profile's userEventSizeLimit / querySizeLimit; else 400)
 *   POST /relate      { a: 'svc:ep', b: 'svc:ep' }
 *   POST /unrelate    { a, b }
 *   GET  /logs        NDJSON stream (replay + follow; see log-route.ts)
 *   GET  /info        the agent's identity and addresses
 *   and, over the mesh (mesh-routes.ts): GET /cluster/status, GET /units/:unit/{status,info,facts,runs,logs},
 *   POST /units/:unit/resolve, POST /keys
 */
import * as z from 'zod';
import type { Json } from '@rhizome/engine';
import { MAX_PAYLOAD_DEPTH, nestsDeeperThan } from '@rhizome/gossip';
import type { AgentApi } from '../unit/api';
import { formatIssues } from '../config';
import { AgentError } from '../errors';
import { logStreamRoute } from './log-route';
import { meshControlRoutes } from './mesh-routes';
import type { ControlRoutes } from './server';

const jsonValue: z.ZodType<Json> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(jsonValue), z.record(z.string(), jsonValue)]),
);

const resolveBody = z.strictObject({ skip: z.boolean().optional() }).optional();
const goneBody = z.strictObject({ unit: z.string().min(1).max(80) });
const eventBody = z.strictObject({ name: z.string().min(1), payload: jsonValue.optional() });
const queryBody = z.strictObject({ name: z.string().min(1), payload: jsonValue.optional(), timeoutMs: z.number().int().min(10).max(60_000).optional() });
const configBody = z.strictObject({ set: z.record(z.string().min(1).max(128), z.string().max(64 * 1024)), dryRun: z.boolean().optional() });
const actionBody = z.strictObject({ params: z.record(z.string().min(1).max(128), z.string().max(64 * 1024)).optional(), background: z.boolean().optional() });
const relateBody = z.strictObject({ a: z.string(), b: z.string() });

/**
 * Event and query payloads travel in gossip frames: refuse here, with the
 * limit named, what the wire would refuse later (the size limit is checked
 * by the node itself, before anything is queued: GOSSIP_ERR_*_TOO_LARGE -> 400).
 */
function checkPayload(body: unknown): void {
  const payload = (body as { payload?: unknown } | null)?.payload;
  if (nestsDeeperThan(payload, MAX_PAYLOAD_DEPTH)) {
    throw new AgentError(
      'AGENT_ERR_BAD_REQUEST',
      `payload nests deeper than ${MAX_PAYLOAD_DEPTH} levels of arrays/objects (the gossip wire's limit); flatten it`,
    );
  }
}

function parseBody<T>(schema: z.ZodType<T>, body: unknown, example: string): T {
  const r = schema.safeParse(body);
  if (!r.success) throw new AgentError('AGENT_ERR_BAD_REQUEST', `bad request body: ${formatIssues(r.error.issues)}; expected ${example}`);
  return r.data;
}

export function buildControlRoutes(agent: AgentApi): ControlRoutes {
  return {
    'GET /info': () => agent.info(),
    'GET /status': () => agent.status(),
    'GET /members': () => agent.members(),
    'GET /facts': () => agent.facts(),
    'GET /runs': () => agent.runs(),
    'GET /converged': () => agent.converged(),
    'GET /relations': () => ({ declarations: agent.directory.active(), views: agent.directory.views() }),
    'POST /resolve': (req) => {
      const body = parseBody(resolveBody, req.body, '{ "skip": false }');
      return agent.resolve(body?.skip === true);
    },
    'POST /event': (req) => {
      checkPayload(req.body);
      const body = parseBody(eventBody, req.body, '{ "name": "deploy", "payload": {...} }');
      return agent.sendEvent(body.name, body.payload);
    },
    'POST /query': (req) => {
      checkPayload(req.body);
      const body = parseBody(queryBody, req.body, '{ "name": "ping", "timeoutMs": 2000 }');
      return agent.query(body.name, body.payload, body.timeoutMs);
    },
    'GET /actions': () => agent.actions(),
    'POST /actions/:name': (req) => {
      const body = parseBody(actionBody, req.body ?? {}, '{ "params": { "to": "/tmp/backup" } }');
      return agent.runAction(req.params['name'] ?? '', body.params ?? {}, body.background === true);
    },
    'GET /config': () => agent.configOptions(),
    'POST /config': (req) => {
      const body = parseBody(configBody, req.body, '{ "set": { "port": "8080" }, "dryRun": false }');
      return agent.reconfigure(body.set, body.dryRun === true);
    },
    'POST /query/stream': {
      kind: 'stream',
      handler: (req) => {
        checkPayload(req.body);
        const body = parseBody(queryBody, req.body, '{ "name": "ping", "timeoutMs": 2000 }');
        return agent.queryStream(body.name, body.payload, body.timeoutMs);
      },
    },
    'POST /relate': (req) => {
      const body = parseBody(relateBody, req.body, '{ "a": "datanode:namenode", "b": "namenode:datanode" }');
      return agent.directory.relate(body.a, body.b);
    },
    'POST /gone': (req) => {
      const body = parseBody(goneBody, req.body, '{ "unit": "datanode/3" }');
      return agent.directory.announceGone(body.unit);
    },
    'POST /unrelate': (req) => {
      const body = parseBody(relateBody, req.body, '{ "a": "datanode:namenode", "b": "namenode:datanode" }');
      return agent.directory.unrelate(body.a, body.b);
    },
    'GET /logs': logStreamRoute(agent.logTail),
    // Past this agent, over the mesh: /cluster/status, /units/:unit/..., /keys (mesh-routes.ts).
    ...meshControlRoutes(agent),
  };
}
