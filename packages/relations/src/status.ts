/**
 * What `rhizome status` shows about relations: per endpoint and relation,
 * the remote units, how far their data is, and relation errors (remote data
 * that violates the interface) with the offending keys. Read-only, computed
 * from the committed knowledge base.
 */
import type { Json } from '@rhizome/engine';
import type { BagStatus } from './interface';
import type { EndpointRole } from './metadata';
import { asEndpointState, compareUnits, effectiveLocal, leaderOf, LINKS_KEY } from './state';

export interface UnitStatus {
  readonly unit: string;
  readonly status: BagStatus;
  readonly version: number;
  readonly missingKeys: readonly string[];
  readonly invalidKeys: readonly string[];
  readonly problems: readonly string[];
  /** The interface version the remote unit last sent, if it sent one. */
  readonly ifaceVersion?: string;
}

export interface RelationStatus {
  readonly endpoint: string;
  readonly interface: string;
  readonly role: EndpointRole;
  readonly relationId: string;
  readonly remoteService: string;
  readonly remoteEndpoint: string;
  readonly units: readonly UnitStatus[];
  readonly departed: readonly string[];
  /** The version of this unit's bag on this relation (endpoint-wide bag under the relation's own keys). */
  readonly published: number;
  /** Peers only. */
  readonly leader?: string;
  /** One line per remote unit whose data violates the interface, or that speaks another major version of it. */
  readonly errors: readonly string[];
}

/**
 * @example
 * for (const r of relationStatus(engine.knowledge.relations))
 *   console.log(`${r.endpoint} (${r.relationId}) -> ${r.remoteService}: ${r.units.map((u) => `${u.unit} ${u.status}`).join(', ')}`, ...r.errors);
 */
export function relationStatus(relations: Readonly<Record<string, Json>>): RelationStatus[] {
  const out: RelationStatus[] = [];
  for (const endpoint of Object.keys(relations).sort()) {
    if (endpoint === LINKS_KEY) continue;
    const s = asEndpointState(relations[endpoint]);
    if (!s) continue;
    for (const relationId of Object.keys(s.relations).sort()) {
      const rel = s.relations[relationId]!;
      const units = Object.keys(rel.units)
        .sort(compareUnits)
        .map((unit) => {
          const v = rel.units[unit]!;
          return {
            unit,
            status: v.status,
            version: v.version,
            missingKeys: v.missingKeys,
            invalidKeys: v.invalidKeys,
            problems: v.problems,
            ...(v.ifaceVersion !== undefined ? { ifaceVersion: v.ifaceVersion } : {}),
          };
        });
      const errors = units
        .filter((u) => u.status === 'invalid' || u.status === 'incompatible')
        .map((u) =>
          u.status === 'incompatible'
            ? `${endpoint} (${relationId}): ${u.problems.join('; ')}`
            : `${endpoint} (${relationId}): ${u.unit} published data that violates ${s.interface}@${s.interfaceVersion}: ${u.problems.join('; ') || `bad keys ${u.invalidKeys.join(', ')}`}`,
        );
      out.push({
        endpoint,
        interface: s.interface,
        role: s.role,
        relationId,
        remoteService: rel.remoteService,
        remoteEndpoint: rel.remoteEndpoint,
        units,
        departed: rel.departed,
        published: effectiveLocal(s, relationId)?.version ?? s.local.version,
        ...(s.role === 'peers' && s.unit !== '' ? { leader: leaderOf(s) } : {}),
        errors,
      });
    }
  }
  return out;
}
