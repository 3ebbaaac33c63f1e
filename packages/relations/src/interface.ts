/**
 * Interfaces: the typed contract of a relation. An interface names the data
 * each side publishes, as zod object schemas, so a charm gets TypeScript
 * types for its own bag and for the remote bags, and the relation manager
 * checks remote data at run time before any handler can see it.
 *
 * Validation of a remote bag has three outcomes, because data arrives over
 * time (a namenode publishes its port in one run and its address later):
 *   - `ok`: the bag satisfies the schema: the relation is `available`;
 *   - `incomplete`: some required keys are still missing, but every key
 *     present has a valid value: not available, and not an error;
 *   - `invalid`: a key is present with a value the schema refuses: a
 *     relation error naming the offending keys, shown in status.
 * Unknown keys are ignored (z.object strips them), so a newer peer that
 * publishes more keys stays compatible with an older interface version.
 */
import * as z from 'zod';
import type { Json, JsonObject } from '@rhizome/engine';
import { RelationError } from './errors';
import { NAME_PATTERN, type EndpointRole } from './metadata';

/** The schema of one side's data bag: a zod object. */
export type BagSchema = z.ZodObject;

export interface InterfaceInput<P extends BagSchema, R extends BagSchema, Peer extends BagSchema, App extends BagSchema> {
  /** The interface name used in charm metadata, e.g. `dfs-slave`. */
  readonly name: string;
  /** Semantic version of the contract, e.g. `1.0.0`; shown in status and errors. */
  readonly version: string;
  /** What the providing side publishes. */
  readonly provides: P;
  /** What the requiring side publishes (use `z.object({})` for nothing). */
  readonly requires: R;
  /** What each unit of a peer relation publishes (peers endpoints only). */
  readonly peers?: Peer;
  /** The application-level bag of a peer relation, written by the leader only. */
  readonly app?: App;
}

/**
 * One side of an interface, as seen from a charm: the schema of its own bag
 * (`local`) and of the remote units' bags (`remote`). Pass it to `relation()`.
 */
export interface InterfaceSide<Local extends BagSchema, Remote extends BagSchema, App extends BagSchema> {
  readonly interface: string;
  readonly version: string;
  readonly role: EndpointRole;
  readonly local: Local;
  readonly remote: Remote;
  readonly app: App;
}

export interface InterfaceDefinition<P extends BagSchema = BagSchema, R extends BagSchema = BagSchema, Peer extends BagSchema = BagSchema, App extends BagSchema = BagSchema> {
  readonly name: string;
  readonly version: string;
  readonly schemas: { readonly provides: P; readonly requires: R; readonly peers: Peer; readonly app: App };
  /** The providing side: publishes `provides`, reads `requires`. */
  readonly provider: InterfaceSide<P, R, App>;
  /** The requiring side: publishes `requires`, reads `provides`. */
  readonly requirer: InterfaceSide<R, P, App>;
  /** A peer: publishes and reads `peers`. */
  readonly peer: InterfaceSide<Peer, Peer, App>;
  /** The schema a bag published by an endpoint of `role` must satisfy. */
  schemaFor(role: EndpointRole): BagSchema;
}

const EMPTY = z.object({});
type Empty = typeof EMPTY;

/**
 * Defines an interface. Charms import the result and pass its sides to `relation()`.
 *
 * @example
 * export const http = defineInterface({
 *   name: 'http',
 *   version: '1.0.0',
 *   provides: z.object({ host: z.string(), port: z.number().int() }),
 *   requires: z.object({}),
 * });
 * // in a handler of the web charm:
 * relation(ctx, 'website', http.provider).publish({ host: '10.0.0.5', port: 80 });
 */
export function defineInterface<P extends BagSchema, R extends BagSchema, Peer extends BagSchema = Empty, App extends BagSchema = Empty>(
  input: InterfaceInput<P, R, Peer, App>,
): InterfaceDefinition<P, R, Peer, App> {
  if (typeof input?.name !== 'string' || !NAME_PATTERN.test(input.name)) {
    throw new RelationError('REL_ERR_UNKNOWN_INTERFACE', `an interface needs a name of lowercase letters, digits and dashes (e.g. "dfs-slave"), got ${JSON.stringify(input?.name)}`);
  }
  if (typeof input.version !== 'string' || !/^\d+\.\d+\.\d+$/.test(input.version)) {
    throw new RelationError('REL_ERR_UNKNOWN_INTERFACE', `interface "${input.name}" needs a semantic version like "1.0.0", got ${JSON.stringify(input.version)}`);
  }
  for (const key of ['provides', 'requires', 'peers', 'app'] as const) {
    const s = input[key];
    if (s !== undefined && !(s instanceof z.ZodObject)) {
      throw new RelationError('REL_ERR_UNKNOWN_INTERFACE', `interface "${input.name}": ${key} must be a zod object schema (z.object({...}))`);
    }
  }
  const peers = (input.peers ?? EMPTY) as Peer;
  const app = (input.app ?? EMPTY) as App;
  const side = <L extends BagSchema, Rm extends BagSchema>(role: EndpointRole, local: L, remote: Rm): InterfaceSide<L, Rm, App> =>
    Object.freeze({ interface: input.name, version: input.version, role, local, remote, app });
  const schemas = Object.freeze({ provides: input.provides, requires: input.requires, peers, app });
  return Object.freeze({
    name: input.name,
    version: input.version,
    schemas,
    provider: side('provides', input.provides, input.requires),
    requirer: side('requires', input.requires, input.provides),
    peer: side('peers', peers, peers),
    schemaFor: (role: EndpointRole): BagSchema => (role === 'provides' ? input.provides : role === 'requires' ? input.requires : peers),
  });
}

/** `incompatible`: the remote unit speaks another major version of the interface; its bag is not applied (interface-version.ts). */
export type BagStatus = 'ok' | 'incomplete' | 'invalid' | 'incompatible';

export interface BagValidation {
  readonly status: BagStatus;
  /** Required keys not published yet. */
  readonly missingKeys: readonly string[];
  /** Keys present with a value the schema refuses. */
  readonly invalidKeys: readonly string[];
  /** Human-readable problems (invalid keys only), for status. */
  readonly problems: readonly string[];
}

/** Classifies a remote bag against the schema of the side that published it. Never throws. */
export function validateBag(schema: BagSchema, bag: JsonObject): BagValidation {
  let result: ReturnType<BagSchema['safeParse']>;
  try {
    result = schema.safeParse(bag);
  } catch (thrown) {
    // A refinement written by a charm author could throw; that is the data's problem, not the agent's.
    return { status: 'invalid', missingKeys: [], invalidKeys: Object.keys(bag).sort(), problems: [`schema check threw: ${thrown instanceof Error ? thrown.message : String(thrown)}`] };
  }
  if (result.success) return { status: 'ok', missingKeys: [], invalidKeys: [], problems: [] };
  const missing = new Set<string>();
  const invalid = new Set<string>();
  const problems: string[] = [];
  for (const issue of result.error.issues) {
    const head = issue.path[0];
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) invalid.add(k);
      problems.push(`unexpected keys ${issue.keys.join(', ')}`);
      continue;
    }
    if (head === undefined) {
      problems.push(issue.message);
      for (const k of Object.keys(bag)) invalid.add(k);
      continue;
    }
    const key = String(head);
    if (bag[key] === undefined) {
      missing.add(key);
    } else {
      invalid.add(key);
      problems.push(`${issue.path.map(String).join('.')}: ${issue.message} (got ${preview(bag[key])})`);
    }
  }
  const missingKeys = [...missing].sort();
  const invalidKeys = [...invalid].sort();
  return { status: invalidKeys.length > 0 || problems.length > 0 ? 'invalid' : 'incomplete', missingKeys, invalidKeys, problems };
}

function preview(v: Json | undefined): string {
  const s = JSON.stringify(v) ?? 'undefined';
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * The interfaces an agent knows, by name. Relating an endpoint whose
 * interface is not registered is refused (REL_ERR_UNKNOWN_INTERFACE).
 */
export class InterfaceRegistry {
  private readonly byName = new Map<string, InterfaceDefinition>();

  constructor(definitions: readonly InterfaceDefinition[] = []) {
    for (const d of definitions) this.register(d);
  }

  register(definition: InterfaceDefinition): this {
    const existing = this.byName.get(definition.name);
    if (existing && existing !== definition) {
      throw new RelationError('REL_ERR_UNKNOWN_INTERFACE', `interface "${definition.name}" is registered twice (versions ${existing.version} and ${definition.version}); register one definition per name`);
    }
    this.byName.set(definition.name, definition);
    return this;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The definition, or REL_ERR_UNKNOWN_INTERFACE listing the known ones. */
  get(name: string): InterfaceDefinition {
    const d = this.byName.get(name);
    if (!d) {
      const known = [...this.byName.keys()].sort();
      throw new RelationError(
        'REL_ERR_UNKNOWN_INTERFACE',
        `unknown interface "${name}"; known interfaces: ${known.length > 0 ? known.join(', ') : '(none)'}. Define it with defineInterface() and register it with the agent.`,
      );
    }
    return d;
  }

  names(): string[] {
    return [...this.byName.keys()].sort();
  }
}
