/**
 * Charm metadata: the endpoints a charm declares, in Juju's shape.
 *
 *   { name: 'hdfs-datanode',
 *     provides: {},
 *     requires: { namenode: { interface: 'dfs-slave' } },
 *     peers:    { cluster:  { interface: 'hdfs-peers' } } }
 *
 * Metadata comes from a charm's files, i.e. from outside the type system, so
 * `parseCharmMetadata(unknown)` is the one place it is checked; everything
 * after it works on the frozen result. An endpoint name is unique across the
 * three sections (events and facts name endpoints, not roles).
 */
import * as z from 'zod';
import { RelationError } from './errors';

export type EndpointRole = 'provides' | 'requires' | 'peers';

export const ENDPOINT_ROLES: readonly EndpointRole[] = Object.freeze(['provides', 'requires', 'peers']);

export interface EndpointSpec {
  readonly name: string;
  readonly role: EndpointRole;
  readonly interface: string;
  /** Maximum number of relations on this endpoint (Juju's `limit`); undefined = unlimited. */
  readonly limit?: number;
}

export interface CharmMetadata {
  readonly name: string;
  readonly description?: string;
  /** Every endpoint, by name. */
  readonly endpoints: Readonly<Record<string, EndpointSpec>>;
}

/** Names of services, endpoints and interfaces: lowercase, digits and dashes, starting with a letter. */
export const NAME_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;
/** Endpoint names also allow underscores (Juju charms use `website_lb`-style names). */
export const ENDPOINT_PATTERN = /^[a-z][a-z0-9_-]{0,62}$/;

const endpointSchema = z.strictObject({
  interface: z.string().regex(NAME_PATTERN, 'an interface name is lowercase letters, digits and dashes, e.g. "dfs-slave"'),
  limit: z.number().int().positive().optional(),
});

const sectionSchema = z.record(z.string().regex(ENDPOINT_PATTERN, 'an endpoint name is lowercase letters, digits, "_" and "-", e.g. "namenode"'), endpointSchema);

const metadataSchema = z.object({
  name: z.string().regex(NAME_PATTERN, 'a charm name is lowercase letters, digits and dashes, e.g. "hdfs-datanode"'),
  description: z.string().optional(),
  provides: sectionSchema.optional(),
  requires: sectionSchema.optional(),
  peers: sectionSchema.optional(),
});

/**
 * Checks charm metadata and returns it normalized (every endpoint with its role).
 * Throws REL_ERR_BAD_METADATA naming each problem and where it is.
 *
 * @example
 * const meta = parseCharmMetadata({ name: 'web', provides: { website: { interface: 'http' } } });
 * meta.endpoints.website // { name: 'website', role: 'provides', interface: 'http' }
 */
export function parseCharmMetadata(input: unknown): CharmMetadata {
  const parsed = metadataSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(metadata)'}: ${i.message}`);
    const named = typeof (input as { name?: unknown } | null)?.name === 'string' ? ` of charm "${(input as { name: string }).name}"` : '';
    throw new RelationError('REL_ERR_BAD_METADATA', `invalid charm metadata${named}: ${problems.join('; ')}. Expected { name, provides?: { <endpoint>: { interface } }, requires?: {...}, peers?: {...} }.`);
  }
  const m = parsed.data;
  const endpoints: Record<string, EndpointSpec> = {};
  for (const role of ENDPOINT_ROLES) {
    for (const [name, ep] of Object.entries(m[role] ?? {})) {
      const existing = endpoints[name];
      if (existing) {
        throw new RelationError('REL_ERR_BAD_METADATA', `charm "${m.name}" declares endpoint "${name}" both in ${existing.role} and in ${role}; endpoint names must be unique across provides, requires and peers`);
      }
      endpoints[name] = Object.freeze({ name, role, interface: ep.interface, ...(ep.limit !== undefined ? { limit: ep.limit } : {}) });
    }
  }
  return Object.freeze({ name: m.name, ...(m.description !== undefined ? { description: m.description } : {}), endpoints: Object.freeze(endpoints) });
}

/** The endpoint of a charm by name, or REL_ERR_UNKNOWN_ENDPOINT listing the ones it has. */
export function endpointOf(metadata: CharmMetadata, endpoint: string): EndpointSpec {
  const spec = metadata.endpoints[endpoint];
  if (!spec) {
    const known = Object.keys(metadata.endpoints);
    throw new RelationError(
      'REL_ERR_UNKNOWN_ENDPOINT',
      `charm "${metadata.name}" has no endpoint "${endpoint}"; it declares ${known.length > 0 ? known.map((k) => `"${k}"`).join(', ') : 'no endpoints'}`,
    );
  }
  return spec;
}
