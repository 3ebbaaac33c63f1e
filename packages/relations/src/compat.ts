/**
 * Which endpoints may be related. Juju's rules:
 *   - the two endpoints use the same interface;
 *   - one side provides what the other requires (provides <-> requires);
 *   - a peers endpoint relates only the units of its own service, on itself
 *     (that relation is implicit in Juju; here it is explicit but checked);
 *   - a service is never related to itself on a provides/requires endpoint
 *     (its units would read their own kind of data as the other side's).
 * Every refusal is a RelationError that says which rule and what to do.
 */
import { RelationError } from './errors';
import type { InterfaceRegistry } from './interface';
import { endpointOf, type CharmMetadata, type EndpointSpec } from './metadata';

export interface ServiceEndpoint {
  /** The service (application) name, e.g. `hdfs-namenode`. */
  readonly service: string;
  readonly endpoint: string;
  readonly metadata: CharmMetadata;
}

export interface CheckedRelation {
  readonly a: EndpointSpec;
  readonly b: EndpointSpec;
  readonly interface: string;
  readonly peer: boolean;
}

/**
 * Checks that two service endpoints can be related; throws otherwise.
 *
 * @example
 * checkRelation(
 *   { service: 'hdfs-datanode', endpoint: 'namenode', metadata: datanodeMeta },
 *   { service: 'hdfs-namenode', endpoint: 'datanode', metadata: namenodeMeta },
 *   registry,
 * ); // ok: requires dfs-slave <-> provides dfs-slave
 */
export function checkRelation(a: ServiceEndpoint, b: ServiceEndpoint, registry?: InterfaceRegistry): CheckedRelation {
  const ea = endpointOf(a.metadata, a.endpoint);
  const eb = endpointOf(b.metadata, b.endpoint);
  const la = `${a.service}:${a.endpoint}`;
  const lb = `${b.service}:${b.endpoint}`;
  if (registry) {
    registry.get(ea.interface);
    registry.get(eb.interface);
  }
  if (ea.role === 'peers' || eb.role === 'peers') {
    if (a.service === b.service && a.endpoint === b.endpoint && ea.role === 'peers') {
      return { a: ea, b: eb, interface: ea.interface, peer: true };
    }
    throw new RelationError(
      'REL_ERR_INCOMPATIBLE',
      `cannot relate ${la} (${ea.role} ${ea.interface}) to ${lb} (${eb.role} ${eb.interface}): a peers endpoint relates the units of one service among themselves (relate ${la} to itself), never to another endpoint`,
    );
  }
  if (a.service === b.service) {
    throw new RelationError(
      'REL_ERR_SELF_RELATION',
      `cannot relate service "${a.service}" to itself on ${la} and ${lb}: only peers endpoints relate a service to itself. Deploy a second service from the charm, or declare a peers endpoint.`,
    );
  }
  if (ea.interface !== eb.interface) {
    throw new RelationError(
      'REL_ERR_INCOMPATIBLE',
      `cannot relate ${la} to ${lb}: their interfaces differ ("${ea.interface}" vs "${eb.interface}"); both endpoints must use the same interface`,
    );
  }
  if (ea.role === eb.role) {
    throw new RelationError(
      'REL_ERR_INCOMPATIBLE',
      `cannot relate ${la} to ${lb}: both ${ea.role} "${ea.interface}"; one side must provide what the other requires`,
    );
  }
  return { a: ea, b: eb, interface: ea.interface, peer: false };
}
