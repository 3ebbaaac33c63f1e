/**
 * Convergence of a deployment, as seen from outside (the CLI).
 *
 * Each live unit answers `GET /converged` with its local half: its engine is
 * idle with an empty inbox and not in error, no link has unacked or buffered
 * messages, every relation is established; plus its member list, its own
 * bag versions and its views of remote bags. The deployment has converged
 * when, on every live unit:
 *   - the local half holds;
 *   - the alive members are exactly the deployment's live units;
 *   - on every relation, the joined remote units are exactly the live units
 *     of the remote service (other than itself), and its view of each is at
 *     that unit's latest published (incarnation, version);
 * and this held on two consecutive polls (a run may start between two).
 */
import type { LocalConvergence } from '../unit/api';
import { AgentError } from '../errors';
import { parseEndpointRef, relationIdOf } from '../mesh/relation-id';
import { clientFor, liveUnits, type Deployment } from './deployment';

export interface ConvergenceCheck {
  readonly converged: boolean;
  /** Why not, one line per problem (bounded). */
  readonly reasons: readonly string[];
  readonly live: readonly string[];
  /** Units whose engine is in `error` (retries exhausted): only `resolve` moves them on. */
  readonly errors: readonly UnitInError[];
}

export interface UnitInError {
  readonly unit: string;
  readonly handler?: string;
  readonly code: string;
  readonly message: string;
  readonly event: string;
  readonly attempts: number;
}

/** The unit's error line and how to get it going again (what deploy/wait/start/add-unit print). */
export function describeUnitError(e: UnitInError): string {
  // The engine's message usually names the handler and event already.
  const detail = e.handler !== undefined && !e.message.includes(`"${e.handler}"`) ? `handler "${e.handler}" failed on ${e.event}: ${e.message}` : e.message;
  return (
    `${e.unit} is in error after ${e.attempts} attempt(s): ${detail}\n` +
    `  see 'rhizome logs ${e.unit} --level warn'; fix the cause, then 'rhizome resolve ${e.unit}' to retry ` +
    `(or 'rhizome resolve ${e.unit} --skip' to drop the event)`
  );
}

/** Whether a reason line names `unit` (as a whole unit name: `kv/1` is not `kv/10`). */
function mentions(reason: string, unit: string): boolean {
  let at = reason.indexOf(unit);
  while (at >= 0) {
    const after = reason[at + unit.length];
    const before = at === 0 ? ' ' : reason[at - 1]!;
    if (!/[\w/-]/.test(before) && (after === undefined || !/\d/.test(after))) return true;
    at = reason.indexOf(unit, at + 1);
  }
  return false;
}

export interface CheckOptions {
  /**
   * Units in error that do not hold convergence back: their error, their own
   * reasons and every reason naming them are left out. upgrade-charm passes
   * the units it has not reached yet, which run the old charm and whose
   * failed run the new one retries when their turn comes.
   */
  readonly tolerate?: ReadonlySet<string>;
}

export async function checkConvergence(d: Deployment, options: CheckOptions = {}): Promise<ConvergenceCheck> {
  const live = liveUnits(d);
  const liveNames = live.map((u) => u.unit).sort();
  const reasons: string[] = [];
  const errors: UnitInError[] = [];
  const reports = new Map<string, LocalConvergence>();
  await Promise.all(
    live.map(async (u) => {
      try {
        const client = await clientFor(u, 5_000);
        reports.set(u.unit, await client.get<LocalConvergence>('/converged'));
      } catch (err) {
        reasons.push(`${u.unit}: unreachable (${(err as Error).message})`);
      }
    }),
  );
  // Every relation declared anywhere (or recorded by the CLI) must be known to
  // every unit, and established on every unit of its two services.
  const declared = new Map<string, readonly [string, string]>();
  for (const [a, b] of d.relations) {
    const x = parseEndpointRef(a);
    const y = parseEndpointRef(b);
    declared.set(relationIdOf(x, y), [x.service, y.service]);
  }
  for (const r of reports.values()) for (const decl of r.declarations ?? []) declared.set(decl.id, decl.services);
  for (const [unit, r] of reports) {
    if (r.error) errors.push({ unit, ...r.error });
    for (const reason of r.reasons) reasons.push(`${unit}: ${reason}`);
    const known = new Set((r.declarations ?? []).map((x) => x.id));
    const service = unit.split('/')[0]!;
    for (const [id, [sa, sb]] of declared) {
      if (!known.has(id)) reasons.push(`${unit}: does not know relation ${id} yet`);
      if (sa === sb || (service !== sa && service !== sb)) continue;
      if (!r.relations.some((x) => x.id === id && x.established)) reasons.push(`${unit}: relation ${id} not established`);
    }
    const members = [...r.members].sort();
    if (members.join(',') !== liveNames.join(',')) {
      const missing = liveNames.filter((n) => !members.includes(n));
      const extra = members.filter((n) => !liveNames.includes(n));
      reasons.push(`${unit}: members differ${missing.length ? `, missing ${missing.join(' ')}` : ''}${extra.length ? `, still sees ${extra.join(' ')}` : ''}`);
    }
    for (const rel of r.relations) {
      const want = liveNames.filter((n) => n.split('/')[0] === rel.remoteService && n !== unit);
      const have = [...rel.units].sort();
      if (have.join(',') !== want.join(',')) reasons.push(`${unit}: relation ${rel.id} has units [${have.join(' ')}], live are [${want.join(' ')}]`);
    }
    for (const v of r.views) {
      const remote = reports.get(v.unit);
      if (!remote) continue;
      const pub = remote.published[v.remoteEndpoint];
      if (!pub) continue;
      const same = pub.version === 0 ? v.version === 0 : pub.version === v.version && pub.incarnation === v.incarnation;
      if (!same) reasons.push(`${unit}: view of ${v.unit} on ${v.relationId} at version ${v.version}, published ${pub.version}`);
    }
  }
  if (live.length === 0) reasons.push('no live unit');
  const tolerated = [...(options.tolerate ?? [])].filter((u) => errors.some((e) => e.unit === u));
  if (tolerated.length > 0) {
    const keep = (r: string) => !tolerated.some((u) => r.startsWith(`${u}: `) || mentions(r, u));
    const kept = reasons.filter(keep);
    reasons.length = 0;
    reasons.push(...kept);
    const rest = errors.filter((e) => !tolerated.includes(e.unit));
    errors.length = 0;
    errors.push(...rest);
  }
  errors.sort((a, b) => (a.unit < b.unit ? -1 : a.unit > b.unit ? 1 : 0));
  return { converged: reasons.length === 0, reasons: reasons.slice(0, 50), live: liveNames, errors };
}

export interface WaitOptions {
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  /** Called after each poll. */
  readonly onProgress?: (check: ConvergenceCheck, elapsedMs: number) => void;
  /** Re-read the deployment before each poll (units may be added or killed meanwhile). */
  readonly reload?: () => Promise<Deployment>;
  /**
   * Keep waiting while a unit is in `error` (default false: stop at once
   * with AGENT_ERR_UNIT_ERROR, its error line and how to resolve it, since
   * only `resolve` moves such a unit on).
   */
  readonly waitThroughErrors?: boolean;
  /** See `CheckOptions.tolerate`. */
  readonly tolerate?: ReadonlySet<string>;
}

export const DEFAULT_WAIT_OPTIONS = Object.freeze({
  timeoutMs: 120_000,
  // A poll costs one HTTP call per unit; 4 per second is cheap and feels live.
  intervalMs: 250,
});

/**
 * Polls until the deployment converged on two consecutive polls; resolves
 * with the elapsed ms, rejects on timeout, or as soon as a unit is in error.
 */
export async function waitForConvergence(d: Deployment, options: WaitOptions = {}): Promise<number> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_OPTIONS.timeoutMs;
  const intervalMs = options.intervalMs ?? DEFAULT_WAIT_OPTIONS.intervalMs;
  const start = Date.now();
  let streak = 0;
  let last: ConvergenceCheck | undefined;
  let dep = d;
  for (;;) {
    if (options.reload) dep = await options.reload();
    last = await checkConvergence(dep, options.tolerate ? { tolerate: options.tolerate } : {});
    options.onProgress?.(last, Date.now() - start);
    if (last.errors.length > 0 && options.waitThroughErrors !== true) {
      throw new AgentError('AGENT_ERR_UNIT_ERROR', last.errors.map(describeUnitError).join('\n'));
    }
    streak = last.converged ? streak + 1 : 0;
    if (streak >= 2) return Date.now() - start;
    if (Date.now() - start > timeoutMs) {
      const err = new AgentError('AGENT_ERR_DEPLOY', `deployment "${d.name}" did not converge within ${Math.round(timeoutMs / 1000)} s: ${last.reasons.slice(0, 8).join('; ')}`);
      throw err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
