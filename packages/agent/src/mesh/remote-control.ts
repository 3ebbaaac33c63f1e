/**
 * One view from anywhere: the local agent answers for any unit of the mesh.
 *
 * The control API never leaves loopback. A CLI on host A that asks about a
 * unit on host B talks to A's agent, which asks B's agent over the mesh: a
 * gossip query (`rz.ctl`) addressed to that one member (`filterNodes`), in
 * frames sealed with the cluster's keyring, answered by B directly. The
 * whole-cluster status is the same query without a filter: every agent
 * answers with its own status, and the asker waits until every live member
 * has answered (or the timeout), so `status` on any host shows every unit.
 *
 * Rules:
 *   - the local unit is answered locally (no query);
 *   - a unit the mesh does not know, or knows as failed or left, is an error
 *     that says so (AGENT_ERR_UNKNOWN_UNIT / AGENT_ERR_NOT_RUNNING), not a
 *     timeout;
 *   - an answer must fit one query response (the agent raises the limit to
 *     32 KiB): long lists (runs, log lines) are cut from the oldest end and
 *     say how many were dropped, so an answer is never silently lost;
 *   - an error on the far side comes back with its code and message;
 *   - only members holding the cluster key can ask (the mesh is encrypted),
 *     and `rz.` names are refused on the operator's `query` route, so an
 *     operator's query can never be mistaken for these.
 */
import type { GossipNode, Member } from '@rhizome/gossip';
import type { Json, RunReport } from '@rhizome/engine';
import { AgentError, isAgentErrorCode } from '../errors';
import type { LogFilter, LogRecord } from '../log/log-tail';
import { serviceOf } from './tags';

export const REMOTE_CONTROL_QUERY = 'rz.ctl';

export type RemoteOp = 'status' | 'info' | 'facts' | 'runs' | 'logs' | 'resolve' | 'config' | 'configure' | 'actions' | 'action';
const OPS: readonly RemoteOp[] = ['status', 'info', 'facts', 'runs', 'logs', 'resolve', 'config', 'configure', 'actions', 'action'];

/** What the local agent provides to answer for itself. */
export interface LocalControl {
  readonly unit: string;
  status(): unknown;
  info(): unknown;
  facts(): Record<string, Json>;
  runs(): readonly RunReport[];
  logs(filter: LogFilter & { limit?: number; since?: number }): LogRecord[];
  resolve(skip: boolean): unknown;
  /** `rhizome config`: the charm's options, and a change (key → text). */
  config(): unknown;
  configure(set: Record<string, string>, dryRun: boolean): unknown;
  /** `rhizome run`: the charm's actions, and running one. */
  actions(): unknown;
  action(name: string, params: Record<string, string>, background: boolean): Promise<unknown>;
}

export interface RemoteLogsArgs {
  runId?: string;
  minLevel?: number;
  limit?: number;
  /** Only records with `time` >= since (ms). */
  since?: number;
}

interface Request {
  op: RemoteOp;
  unit: string;
  args?: { skip?: boolean; set?: Record<string, string>; dryRun?: boolean; name?: string; background?: boolean } & RemoteLogsArgs;
}

type Answer = { ok: true; value: unknown; dropped?: number } | { ok: false; code: string; message: string };

/** One unit in the cluster view. */
export interface ClusterUnit {
  readonly unit: string;
  readonly service: string;
  readonly up: boolean;
  readonly status?: unknown;
  /** Why there is no status: the member's state (`failed`, `left`), or `unreachable: ...`. */
  readonly error?: string;
  /** The member's advertised gossip address. */
  readonly address: string;
}

export interface ClusterView {
  /** The cluster label, when it has one. */
  readonly label?: string;
  readonly units: readonly ClusterUnit[];
  /** How long collecting took. */
  readonly tookMs: number;
}

/** Room left in a 32 KiB query response for the answer (JSON is larger than the msgpack on the wire). */
export const MAX_ANSWER_CHARS = 28 * 1024;
const DEFAULT_TIMEOUT_MS = 5_000;

export class RemoteControl {
  private readonly off: () => void;

  constructor(
    private readonly node: GossipNode,
    private readonly local: LocalControl,
    private readonly label: string | undefined,
  ) {
    this.off = node.onQuery(REMOTE_CONTROL_QUERY, (q) => this.answer(q.payload));
  }

  close(): void {
    this.off();
  }

  /** Runs `op` on `unit`'s agent, wherever it is in the mesh. */
  async call(unit: string, op: RemoteOp, args: Request['args'] = {}, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<unknown> {
    if (unit === this.local.unit) return unwrap(await this.answer({ op, unit, args }), unit);
    const member = this.node.members().find((m) => m.name === unit);
    if (member === undefined) {
      const known = this.agents().map((m) => m.name).sort();
      throw new AgentError('AGENT_ERR_UNKNOWN_UNIT', `unit ${unit} is not in the mesh this agent (${this.local.unit}) sees; its units are ${known.join(', ') || '(none)'}`);
    }
    if (member.status === 'failed' || member.status === 'left') {
      throw new AgentError('AGENT_ERR_NOT_RUNNING', `unit ${unit} is ${member.status} in the mesh (last at ${member.address}); start it again on its host`);
    }
    const handle = this.node.query(REMOTE_CONTROL_QUERY, { op, unit, args } satisfies Request, { filterNodes: [unit], timeout: timeoutMs });
    let answer: unknown;
    let answered = false;
    handle.onResponse((from, payload) => {
      if (from !== unit || answered) return;
      answered = true;
      answer = payload;
      handle.close();
    });
    await handle.done;
    if (!answered) {
      throw new AgentError('AGENT_ERR_REMOTE', `unit ${unit} (${member.address}) did not answer within ${timeoutMs} ms over the mesh; is its agent overloaded, or the network between ${this.local.unit} and it cut?`);
    }
    return unwrap(parseAnswer(answer, unit), unit);
  }

  /** Every agent's status: local at once, the others over the mesh; those that do not answer are listed with why. */
  async clusterStatus(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ClusterView> {
    const started = Date.now();
    const agents = this.agents();
    const statuses = new Map<string, unknown>([[this.local.unit, this.local.status()]]);
    const waiting = new Set(agents.filter((m) => m.name !== this.local.unit && (m.status === 'alive' || m.status === 'suspect')).map((m) => m.name));
    if (waiting.size > 0) {
      const handle = this.node.query(REMOTE_CONTROL_QUERY, { op: 'status', unit: '*' } satisfies Request, { timeout: timeoutMs });
      handle.onResponse((from, payload) => {
        const a = parseAnswer(payload, from);
        if (a.ok) statuses.set(from, a.value);
        waiting.delete(from);
        if (waiting.size === 0) handle.close();
      });
      await handle.done;
    }
    const units: ClusterUnit[] = agents.map((m) => {
      const service = serviceOf(m) ?? m.name.split('/')[0] ?? m.name;
      const status = statuses.get(m.name);
      if (status !== undefined) return { unit: m.name, service, up: true, status, address: m.address };
      const error = m.status === 'failed' || m.status === 'left' ? m.status : `unreachable: no answer within ${timeoutMs} ms`;
      return { unit: m.name, service, up: false, error, address: m.address };
    });
    return { ...(this.label !== undefined ? { label: this.label } : {}), units, tookMs: Date.now() - started };
  }

  /** Members that are agents (they carry a service tag), this one included. */
  private agents(): Member[] {
    return this.node.members().filter((m) => serviceOf(m) !== undefined);
  }

  /** Answers a request for this unit (untrusted payload: checked field by field). */
  private answer(payload: unknown): Answer | undefined | Promise<Answer> {
    const req = parseRequest(payload);
    if (req === undefined) return { ok: false, code: 'AGENT_ERR_BAD_REQUEST', message: 'malformed remote control request' };
    if (req.unit !== '*' && req.unit !== this.local.unit) return undefined;
    try {
      switch (req.op) {
        case 'status':
          return fit(this.local.status());
        case 'info':
          return fit(this.local.info());
        case 'facts':
          return fitRecord(this.local.facts());
        case 'runs':
          return fitList([...this.local.runs()]);
        case 'logs': {
          const a = req.args ?? {};
          const filter = {
            ...(a.runId !== undefined ? { runId: a.runId } : {}),
            ...(a.minLevel !== undefined ? { minLevel: a.minLevel } : {}),
            ...(a.limit !== undefined ? { limit: a.limit } : {}),
            ...(a.since !== undefined ? { since: a.since } : {}),
          };
          return fitList(this.local.logs(filter));
        }
        case 'resolve':
          return fit(this.local.resolve(req.args?.skip === true));
        case 'config':
          return fit(this.local.config());
        case 'configure':
          return fit(this.local.configure(req.args?.set ?? {}, req.args?.dryRun === true));
        case 'actions':
          return fit(this.local.actions());
        case 'action':
          return this.local.action(req.args?.name ?? '', req.args?.set ?? {}, req.args?.background === true).then(fit, (err: unknown) => failed(err));
      }
    } catch (err) {
      return failed(err);
    }
  }
}

function failed(err: unknown): Answer {
  const e = err as { code?: unknown; message?: unknown };
  return { ok: false, code: typeof e.code === 'string' ? e.code : 'AGENT_ERR_INTERNAL', message: String(e.message ?? err) };
}

function parseRequest(payload: unknown): Request | undefined {
  if (payload === null || typeof payload !== 'object') return undefined;
  const p = payload as Record<string, unknown>;
  if (typeof p['op'] !== 'string' || !(OPS as readonly string[]).includes(p['op'])) return undefined;
  if (typeof p['unit'] !== 'string' || p['unit'].length > 80) return undefined;
  const args: Request['args'] = {};
  const a = p['args'];
  if (a !== undefined && a !== null) {
    if (typeof a !== 'object') return undefined;
    const r = a as Record<string, unknown>;
    if (typeof r['skip'] === 'boolean') args.skip = r['skip'];
    if (typeof r['dryRun'] === 'boolean') args.dryRun = r['dryRun'];
    if (typeof r['background'] === 'boolean') args.background = r['background'];
    if (typeof r['name'] === 'string' && /^[a-z][a-z0-9-]{0,63}$/.test(r['name'])) args.name = r['name'];
    const set = r['set'];
    if (set !== undefined) {
      if (set === null || typeof set !== 'object' || Array.isArray(set)) return undefined;
      const entries = Object.entries(set as Record<string, unknown>);
      if (entries.length > 64 || entries.some(([k, v]) => k.length > 128 || typeof v !== 'string')) return undefined;
      args.set = Object.fromEntries(entries) as Record<string, string>;
    }
    if (typeof r['runId'] === 'string' && r['runId'].length <= 200) args.runId = r['runId'];
    for (const k of ['minLevel', 'limit', 'since'] as const) {
      const v = r[k];
      if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) args[k] = v;
    }
  }
  return { op: p['op'] as RemoteOp, unit: p['unit'], args };
}

function parseAnswer(payload: unknown, from: string): Answer {
  if (payload !== null && typeof payload === 'object') {
    const p = payload as Record<string, unknown>;
    if (p['ok'] === true && 'value' in p) return { ok: true, value: p['value'], ...(typeof p['dropped'] === 'number' ? { dropped: p['dropped'] } : {}) };
    if (p['ok'] === false && typeof p['code'] === 'string' && typeof p['message'] === 'string') return { ok: false, code: p['code'], message: p['message'] };
  }
  return { ok: false, code: 'AGENT_ERR_REMOTE', message: `unit ${from} sent a malformed answer` };
}

function unwrap(a: Answer | undefined, unit: string): unknown {
  if (a === undefined) throw new AgentError('AGENT_ERR_REMOTE', `unit ${unit} did not answer`);
  if (a.ok) return a.value;
  if (isAgentErrorCode(a.code)) throw new AgentError(a.code, `${unit}: ${a.message}`);
  // Another package's code (ENGINE_ERR_STATE, REL_ERR_...): kept, so the control API answers as the unit's own would.
  throw Object.assign(new Error(`${unit}: ${a.message}`), { code: a.code });
}

const size = (v: unknown): number => JSON.stringify(v)?.length ?? 0;

function fit(value: unknown): Answer {
  if (size(value) <= MAX_ANSWER_CHARS) return { ok: true, value };
  return { ok: false, code: 'AGENT_ERR_REMOTE', message: `the answer (${size(value)} characters) is larger than one mesh response (${MAX_ANSWER_CHARS}); ask this unit's own host` };
}

/** Drops the oldest entries until the rest fits, and says how many. */
function fitList<T>(list: T[]): Answer {
  let total = size(list);
  let dropped = 0;
  while (total > MAX_ANSWER_CHARS && dropped < list.length) {
    total -= size(list[dropped]) + 1;
    dropped++;
  }
  const value = list.slice(dropped);
  return dropped > 0 ? { ok: true, value, dropped } : { ok: true, value };
}

/** Facts: drops the largest values (replaced by a marker) until the rest fits. */
function fitRecord(rec: Record<string, Json>): Answer {
  if (size(rec) <= MAX_ANSWER_CHARS) return { ok: true, value: rec };
  const out: Record<string, Json> = { ...rec };
  const bySize = Object.keys(out).sort((a, b) => size(out[b]) - size(out[a]));
  let dropped = 0;
  for (const k of bySize) {
    if (size(out) <= MAX_ANSWER_CHARS) break;
    out[k] = `(${size(out[k])} characters: too large for the mesh; read it on the unit's host)`;
    dropped++;
  }
  return { ok: true, value: out, dropped };
}
