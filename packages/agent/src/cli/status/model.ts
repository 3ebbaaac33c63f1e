/**
 * `rhizome status`, the data half: a typed cluster status (what was fetched,
 * unit by unit) and a pure summary of it in `juju status`'s sections
 * (header, services, units, relations, errors). Rendering (render.ts) and
 * fetching (fetch.ts) are apart, so that where the data comes from (the
 * deployment record today, the local agent over the mesh tomorrow) and how it
 * is drawn can change independently.
 *
 * Rules of the summary:
 *   - a unit's agent state is its engine state (idle, running, retrying,
 *     error), or `down`/`unreachable` when no agent answered;
 *   - its workload column reads `error` while the engine is in error (the
 *     charm's own status is stale then), else the status the charm set;
 *   - a service's status is its worst unit's (error > blocked > down >
 *     maintenance > waiting > active > unknown), as Juju derives it;
 *   - the leader (`*`) is the lowest-numbered live unit, the rule peers
 *     relations elect by;
 *   - a relation is listed once (provider, requirer, interface), with the
 *     worst state any of its units reports.
 */
import type { AgentStatus } from '../../unit/api';
import { compareUnitNames } from '../../deploy/deployment';

/** One unit as fetched: its agent's status, or why there is none. */
export interface UnitReport {
  readonly unit: string;
  readonly service: string;
  readonly up: boolean;
  readonly status?: AgentStatus | undefined;
  /** Why `status` is missing: `down`, `killed`, `unreachable: ...`. */
  readonly error?: string | undefined;
  /** The machine the unit was placed on, when the deployment knows (`ssh:user@host`, `local`). */
  readonly machine?: string | undefined;
}

/** What `status` fetched: the input of every renderer. */
export interface ClusterStatus {
  readonly deployment?: string | undefined;
  readonly units: readonly UnitReport[];
}

export type AgentState = 'idle' | 'running' | 'retrying' | 'error' | 'down' | 'unreachable' | (string & {});

export interface ServiceSummary {
  readonly name: string;
  readonly charm: string;
  readonly status: string;
  /** Units up / units known. */
  readonly up: number;
  readonly scale: number;
  readonly message: string;
}

export interface UnitSummary {
  readonly unit: string;
  readonly service: string;
  readonly leader: boolean;
  readonly up: boolean;
  readonly agent: AgentState;
  readonly workload: string;
  readonly message: string;
  /** Advertised gossip address, `host:port`. */
  readonly address: string;
  /** Ports this unit listens on: gossip, then control. */
  readonly ports: readonly number[];
  readonly machine: string;
  /** The agent's release version ('' when it did not answer or did not say). */
  readonly version: string;
  /** The full agent status (scripts read it from `--format json`). */
  readonly status?: AgentStatus | undefined;
}

export interface RelationSummary {
  readonly id: string;
  readonly provider: string;
  readonly requirer: string;
  readonly interface: string;
  readonly kind: 'regular' | 'peer';
  /** `joined` (every side established), `pending`, `incompatible`. */
  readonly state: string;
  readonly message: string;
}

export interface ErrorSummary {
  readonly unit: string;
  readonly state: string;
  readonly handler: string;
  readonly event: string;
  readonly attempts: number;
  readonly message: string;
}

export interface StatusSummary {
  readonly deployment?: string | undefined;
  /** Members alive / total as the first live unit sees the mesh. */
  readonly members?: { readonly alive: number; readonly total: number } | undefined;
  readonly services: readonly ServiceSummary[];
  readonly units: readonly UnitSummary[];
  readonly relations: readonly RelationSummary[];
  readonly errors: readonly ErrorSummary[];
  /**
   * Units that answered but see fewer members alive than there are units
   * answering: the mesh is split (a partition, a machine's network down),
   * and units that do not see each other exchange no relation data.
   */
  readonly meshSplit?: readonly { readonly unit: string; readonly alive: number }[];
  /** Charm warnings by unit (e.g. a precondition on a fact nothing sets). */
  readonly warnings?: readonly { readonly unit: string; readonly message: string }[];
}

/** Worst first. */
const SEVERITY = ['error', 'blocked', 'down', 'unreachable', 'maintenance', 'waiting', 'active', 'unknown'];
function severity(state: string): number {
  const i = SEVERITY.indexOf(state);
  return i === -1 ? SEVERITY.length : i;
}

function hostPort(address: string): { host: string; port?: number } {
  const m = /^(.*):(\d+)$/.exec(address.replace(/^\w+:\/\//, '').replace(/\/.*$/, ''));
  if (!m) return { host: address };
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

function summarizeUnit(u: UnitReport, leader: boolean): UnitSummary {
  const s = u.status;
  if (!s) {
    const agent = u.error?.startsWith('unreachable') ? 'unreachable' : 'down';
    return { unit: u.unit, service: u.service, leader, up: false, agent, workload: 'unknown', message: u.error ?? agent, address: '', ports: [], machine: u.machine ?? '', version: '' };
  }
  const inError = s.engine.state === 'error';
  const gossip = hostPort(s.gossipAddress);
  const control = hostPort(s.controlUrl);
  const ports = [gossip.port, control.port].filter((p): p is number => p !== undefined);
  // In error, Juju's "hook failed", with what the charm last said (the status of the last committed run).
  const last = s.workload?.message ? ` (last: ${s.workload.message})` : '';
  const message = inError && s.engine.error ? `hook failed: ${s.engine.error.handler ?? '(none)'} on ${s.engine.error.event}${last}` : s.workload?.message ?? '';
  return {
    unit: u.unit,
    service: u.service,
    leader,
    up: true,
    agent: s.engine.state,
    workload: inError ? 'error' : s.workload?.state || 'unknown',
    message,
    address: gossip.host,
    ports,
    machine: u.machine ?? (gossip.host === '127.0.0.1' || gossip.host === '::1' ? 'local' : gossip.host),
    version: s.version ?? '',
    status: s,
  };
}

/** The summary `status` shows (pure; see the rules in the file header). */
export function summarizeStatus(cluster: ClusterStatus): StatusSummary {
  const reports = [...cluster.units].sort((a, b) => compareUnitNames(a.unit, b.unit));
  const leaders = new Map<string, string>();
  for (const u of reports) if (u.up && u.status && !leaders.has(u.service)) leaders.set(u.service, u.unit);
  const units = reports.map((u) => summarizeUnit(u, leaders.get(u.service) === u.unit));

  const byService = new Map<string, UnitSummary[]>();
  for (const u of units) byService.set(u.service, [...(byService.get(u.service) ?? []), u]);
  const services: ServiceSummary[] = [...byService]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, us]) => {
      const states = us.map((u) => (u.up ? u.workload : u.agent));
      const worst = [...us].sort((a, b) => severity(a.up ? a.workload : a.agent) - severity(b.up ? b.workload : b.agent))[0]!;
      const status = states.length === 0 ? 'unknown' : worst.up ? worst.workload : worst.agent;
      return {
        name,
        charm: us.find((u) => u.status)?.status?.charm ?? '?',
        status,
        up: us.filter((u) => u.up).length,
        scale: us.length,
        message: worst.message === '' ? '' : us.length > 1 ? `${worst.unit}: ${worst.message}` : worst.message,
      };
    });

  const relations = new Map<string, RelationSummary>();
  for (const u of units) {
    for (const r of u.status?.relations ?? []) {
      const here = `${u.service}:${r.endpoint}`;
      const there = `${r.remoteService}:${r.remoteEndpoint}`;
      const provider = r.peer ? here : r.role === 'requires' ? there : here;
      const requirer = r.peer ? here : r.role === 'requires' ? here : there;
      const incompatible = r.units.some((x) => x.status === 'incompatible');
      const state = incompatible ? 'incompatible' : r.established ? 'joined' : 'pending';
      const message = incompatible ? `${u.unit}: interface versions differ` : r.established ? '' : `${u.unit}: ${r.problem ?? 'waiting for the remote service'}`;
      const prev = relations.get(r.id);
      const rank = (x: string): number => ['incompatible', 'pending', 'joined'].indexOf(x);
      if (prev && rank(prev.state) <= rank(state)) continue;
      relations.set(r.id, { id: r.id, provider, requirer, interface: r.interface ?? prev?.interface ?? '?', kind: r.peer ? 'peer' : 'regular', state, message });
    }
  }

  const errors: ErrorSummary[] = [];
  for (const u of units) {
    const e = u.status?.engine.error;
    if (!e) continue;
    errors.push({ unit: u.unit, state: u.status!.engine.state, handler: e.handler ?? '(none)', event: e.event, attempts: e.attempts, message: e.message });
  }
  const warnings: { unit: string; message: string }[] = [];
  for (const u of units) for (const w of u.status?.warnings ?? []) warnings.push({ unit: u.unit, message: w });
  const first = units.find((u) => u.status);
  const answering = units.filter((u) => u.status);
  const meshSplit = answering.filter((u) => u.status!.members.alive < answering.length).map((u) => ({ unit: u.unit, alive: u.status!.members.alive }));
  return {
    ...(warnings.length > 0 ? { warnings } : {}),
    ...(meshSplit.length > 0 ? { meshSplit } : {}),
    ...(cluster.deployment !== undefined ? { deployment: cluster.deployment } : {}),
    ...(first?.status ? { members: first.status.members } : {}),
    services,
    units,
    relations: [...relations.values()].sort((a, b) => (a.provider < b.provider ? -1 : a.provider > b.provider ? 1 : a.requirer < b.requirer ? -1 : 1)),
    errors,
  };
}

/** `status web`, `status web/0`, `status --state error`: which units and services to show. */
export interface StatusSelector {
  /** Service names or unit names; empty = all. */
  readonly patterns?: readonly string[];
  /** Keep units whose agent or workload state is one of these (e.g. `error`, `blocked`, `down`). */
  readonly states?: readonly string[];
}

/**
 * Narrows a summary: units matching a pattern (a service name matches its
 * units) and a state; services that keep a unit; relations touching a kept
 * service; errors of kept units.
 */
export function selectStatus(s: StatusSummary, sel: StatusSelector): StatusSummary {
  const patterns = sel.patterns ?? [];
  const states = sel.states ?? [];
  if (patterns.length === 0 && states.length === 0) return s;
  const units = s.units.filter(
    (u) =>
      (patterns.length === 0 || patterns.includes(u.unit) || patterns.includes(u.service)) &&
      (states.length === 0 || states.includes(u.agent) || states.includes(u.workload)),
  );
  const keptServices = new Set(units.map((u) => u.service));
  const keptUnits = new Set(units.map((u) => u.unit));
  const svcOf = (endpoint: string): string => endpoint.split(':')[0] ?? '';
  return {
    ...s,
    services: s.services.filter((x) => keptServices.has(x.name)),
    units,
    relations: s.relations.filter((r) => keptServices.has(svcOf(r.provider)) || keptServices.has(svcOf(r.requirer))),
    errors: s.errors.filter((e) => keptUnits.has(e.unit)),
    ...(s.warnings ? { warnings: s.warnings.filter((w) => keptUnits.has(w.unit)) } : {}),
  };
}
