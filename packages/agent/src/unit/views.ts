/**
 * What an agent answers about itself (control API, remote calls, `status`
 * on any host): pure reads of its booted parts, no side effects.
 */
import { getFact } from '@rhizome/engine';
import { asEndpointState } from '@rhizome/relations';
import type { AgentInfo } from '../agent-info';
import { agentVersion } from '../runtime';
import { serviceOf } from '../mesh/tags';
import type { AgentStatus, LocalConvergence } from './api';
import { liveMemberNames } from './mesh-calls';
import type { AgentParts } from './parts';

export function agentInfo(p: AgentParts): AgentInfo {
  return {
    unit: p.config.unit,
    service: p.config.service,
    pid: process.pid,
    controlUrl: p.control.url,
    gossipAddress: p.node.address,
    dataDir: p.config.dataDir,
    unitDir: p.unitDir,
    startedAt: p.startedAt,
  };
}

/** The charm's `workload.status` fact, if it set one. */
export function workloadOf(p: Pick<AgentParts, 'engine'>): { state: string; message: string } | undefined {
  const w = getFact(p.engine.knowledge, 'workload.status') as { state?: unknown; message?: unknown } | undefined;
  if (!w || typeof w !== 'object') return undefined;
  return { state: String(w.state ?? ''), message: String(w.message ?? '') };
}

export function agentStatus(p: AgentParts): AgentStatus {
  const es = p.engine.status();
  const links = p.manager.linkStatus();
  const members = p.node.members();
  const metadata = p.charm.charm.metadata;
  return {
    unit: p.config.unit,
    service: p.config.service,
    charm: metadata.name,
    pid: process.pid,
    controlUrl: p.control.url,
    gossipAddress: p.node.address,
    address: p.net.advertiseHost,
    security: { encrypted: p.encrypted, insecure: p.net.insecure, profile: p.net.profile, ...(p.config.label !== undefined ? { label: p.config.label } : {}) },
    engine: { state: es.state, queued: es.queued, runs: es.runs, ...(es.error ? { error: es.error } : {}) },
    workload: workloadOf(p),
    relations: p.directory.views().map((v) => {
      const problem = p.directory.problems.get(v.id);
      const ep = metadata.endpoints[v.endpoint];
      return {
        ...v,
        ...(ep ? { role: ep.role, interface: ep.interface } : {}),
        links: links.filter((l) => l.relationId === v.id).map((l) => ({ remoteUnit: l.remoteUnit, unacked: l.unacked, buffered: l.buffered, applied: l.applied })),
        ...(problem !== undefined ? { problem } : {}),
      };
    }),
    members: { alive: members.filter((m) => m.status === 'alive').length, total: members.length },
    uptimeMs: Date.now() - p.startedAt,
    version: agentVersion(),
    ...charmWarnings(p),
  };
}

/** Preconditions on facts nothing ever set, once start-up settled (undeclared facts only: declared ones are checked at load). */
function charmWarnings(p: AgentParts): { warnings?: string[] } {
  if (!p.engine.startupSettled) return {};
  const never = p.engine.neverSetFacts();
  if (never.length === 0) return {};
  const byFact = new Map<string, string[]>();
  for (const n of never) byFact.set(n.fact, [...(byFact.get(n.fact) ?? []), n.handler]);
  return {
    warnings: [...byFact].map(([f, hs]) => `handler${hs.length > 1 ? 's' : ''} ${hs.join(', ')} wait${hs.length > 1 ? '' : 's'} on fact '${f}', which no run has ever set (a misspelling? declare the charm's facts to catch it at load)`),
  };
}

/** The local half of convergence (the CLI compares the halves of every unit). */
export function localConvergence(p: AgentParts): LocalConvergence {
  const reasons: string[] = [];
  const es = p.engine.status();
  if (es.state !== 'idle' || es.queued > 0) reasons.push(`engine ${es.state} with ${es.queued} queued`);
  if (es.error) reasons.push(`handler ${es.error.handler ?? '?'} failed: ${es.error.message}`);
  for (const l of p.manager.linkStatus()) {
    // A departed unit's link waits for it to come back; if it never does, it is forgotten when reaped or removed.
    if (l.departed) continue;
    if (l.unacked > 0) reasons.push(`link to ${l.remoteUnit} has ${l.unacked} unacked`);
    if (l.buffered > 0) reasons.push(`link from ${l.remoteUnit} has ${l.buffered} buffered`);
  }
  const kb = p.engine.knowledge;
  const published: Record<string, { incarnation: number; version: number }> = {};
  for (const ep of Object.keys(p.charm.charm.metadata.endpoints)) {
    const s = asEndpointState(kb.relations[ep]);
    published[ep] = { incarnation: s?.incarnation ?? 0, version: s?.local.version ?? 0 };
  }
  const views: LocalConvergence['views'][number][] = [];
  const relations: LocalConvergence['relations'][number][] = [];
  for (const v of p.directory.views()) {
    if (!v.established) reasons.push(`relation ${v.id} not established: ${p.directory.problems.get(v.id) ?? 'pending'}`);
    relations.push({ id: v.id, remoteService: v.remoteService, established: v.established, units: v.units.map((u) => u.unit) });
    for (const u of v.units) views.push({ relationId: v.id, endpoint: v.endpoint, remoteService: v.remoteService, remoteEndpoint: v.remoteEndpoint, unit: u.unit, incarnation: u.incarnation, version: u.version });
  }
  const members = liveMemberNames(p.node).sort();
  const declarations = p.directory.active().map((d) => ({ id: d.id, services: [d.a.service, d.b.service] as const }));
  const error = es.state === 'error' && es.error ? { error: { ...(es.error.handler !== undefined ? { handler: es.error.handler } : {}), code: es.error.code, message: es.error.message, event: es.error.event, attempts: es.error.attempts } } : {};
  return { unit: p.config.unit, ok: reasons.length === 0, reasons, members, published, views, relations, declarations, ...error };
}

/** Services seen in the mesh, by name, with their alive units. */
export function meshServices(p: Pick<AgentParts, 'node'>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const m of p.node.members()) {
    const s = serviceOf(m);
    if (s === undefined || m.status !== 'alive') continue;
    (out[s] ??= []).push(m.name);
  }
  return out;
}
