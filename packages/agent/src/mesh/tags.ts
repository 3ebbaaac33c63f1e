/**
 * What an agent tells the mesh about itself, in its gossip tags (at most 512
 * characters in all, memberlist's limit): its service, its charm's endpoints
 * in a compact form. Never its control API: that stays on loopback, and
 * other hosts reach a unit through their own agent, over the mesh
 * (mesh/remote-control.ts).
 *
 *   { svc: 'namenode', eps: 'datanode:P:dfs-slave,cluster:X:hdfs-peers' }
 *
 * Roles: P = provides, R = requires, X = peers. From the tags of any member
 * of a service, another agent rebuilds that service's metadata, enough to
 * check a relation (`checkRelation`) without a registry or an orchestrator.
 */
import type { Member } from '@rhizome/gossip';
import type { CharmMetadata, EndpointRole, EndpointSpec } from '@rhizome/relations';
import { AgentError } from '../errors';

export const TAG_SERVICE = 'svc';
export const TAG_ENDPOINTS = 'eps';
export const TAG_CHARM = 'charm';

const ROLE_CODE: Record<EndpointRole, string> = { provides: 'P', requires: 'R', peers: 'X' };
const CODE_ROLE: Record<string, EndpointRole> = { P: 'provides', R: 'requires', X: 'peers' };

export function encodeEndpoints(metadata: CharmMetadata): string {
  return Object.values(metadata.endpoints)
    .map((ep) => `${ep.name}:${ROLE_CODE[ep.role]}:${ep.interface}`)
    .join(',');
}

/** The agent's tags: the operator's extra tags, then ours (ours win). */
export function agentTags(service: string, metadata: CharmMetadata, extra: Readonly<Record<string, string>>): Record<string, string> {
  const tags = { ...extra, [TAG_SERVICE]: service, [TAG_CHARM]: metadata.name, [TAG_ENDPOINTS]: encodeEndpoints(metadata) };
  const size = Object.entries(tags).reduce((n, [k, v]) => n + k.length + v.length, 0);
  if (size > 512) {
    throw new AgentError('AGENT_ERR_BAD_CONFIG', `the gossip tags of this unit take ${size} characters (limit 512): use fewer or shorter extra tags, or shorter endpoint names`);
  }
  return tags;
}

/** Rebuilds a service's metadata from a member's tags; undefined when they are missing or malformed (not an agent). */
export function metadataFromTags(member: Member): CharmMetadata | undefined {
  const service = member.tags[TAG_SERVICE];
  const eps = member.tags[TAG_ENDPOINTS];
  if (service === undefined || eps === undefined) return undefined;
  const endpoints: Record<string, EndpointSpec> = {};
  if (eps !== '') {
    for (const part of eps.split(',')) {
      const [name, code, iface] = part.split(':');
      const role = code === undefined ? undefined : CODE_ROLE[code];
      if (!name || !role || !iface) return undefined;
      endpoints[name] = { name, role, interface: iface };
    }
  }
  return { name: member.tags[TAG_CHARM] ?? service, endpoints };
}

export function serviceOf(member: Member): string | undefined {
  return member.tags[TAG_SERVICE];
}
