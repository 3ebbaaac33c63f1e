/**
 * Bundle files: a deployment described in YAML (Juju's bundle, trimmed).
 *
 *   name: hadoop                     # deployment name
 *   services:
 *     namenode:                      # service name; units are namenode/0, namenode/1...
 *       charm: ../../charms/hadoop-namenode   # relative to the bundle file
 *       units: 1
 *       options: { clustername: demo }        # charm config
 *   relations:
 *     - [datanode:namenode, namenode:datanode]
 *   machines:                        # optional (Juju's shape): where units run
 *     "0": local                     # this machine
 *     "1": { ssh: root@10.0.0.5, dir: /var/lib/rhizome }   # over OpenSSH
 *   # ...and per service: `to: [1, 1, 2]` places unit i on machine to[i]
 *   # (`units` defaults to the length of `to`).
 *
 * `parseBundle` checks the shape (zod; every error names the bad field's
 * path), then machines, placements and relation services; `checkBundle`
 * loads each charm (a missing charm folder or charm.ts is an error naming
 * it) and checks every relation's endpoints against the charms' metadata
 * with `checkRelation`. Each step reports all the problems it finds at
 * once, one per line, each naming its field.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import * as z from 'zod';
import type { Json } from '@rhizome/engine';
import { checkRelation, type CharmMetadata } from '@rhizome/relations';
import { loadCharm } from '../charm/load';
import { formatIssues, parseDashboardAddress } from '../config';
import { AgentError, type AgentErrorCode } from '../errors';
import { parseSshTarget } from './ssh';

/** Where units run: this machine, or one reached over SSH. */
export type BundleMachine = { readonly id: string; readonly local: true } | { readonly id: string; readonly local?: false; readonly ssh: string; readonly dir: string };

/** Where units live on a machine when the bundle does not say. */
export const DEFAULT_MACHINE_DIR = '/var/lib/rhizome';

export interface BundleService {
  readonly name: string;
  /** Machine id of each unit, in unit order (absent: every unit on this machine). */
  readonly to?: readonly string[];
  /** Absolute path of the charm folder. */
  readonly charmDir: string;
  readonly units: number;
  readonly options: Readonly<Record<string, Json>>;
  /** Each unit's agent serves the dashboard at `[HOST:]PORT` (0: a free port; the URL is in `<data dir>/dashboard.url`). */
  readonly dashboard?: string | number;
}

export interface Bundle {
  /** Absolute path of the bundle file (or '<inline>'). */
  readonly file: string;
  readonly name: string;
  readonly services: Readonly<Record<string, BundleService>>;
  /** Pairs of `service:endpoint`. */
  readonly relations: readonly (readonly [string, string])[];
  readonly machines: Readonly<Record<string, BundleMachine>>;
}

const NAME = /^[a-z][a-z0-9-]{0,62}$/;
const MACHINE_ID = /^\d{1,6}$/;
const ENDPOINT_REF = /^[a-z][a-z0-9-]{0,62}:[a-z][a-z0-9_-]{0,62}$/;
const jsonValue: z.ZodType<Json> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(jsonValue), z.record(z.string(), jsonValue)]),
);

const bundleSchema = z.strictObject({
  name: z.string().regex(NAME, 'a deployment name is lowercase letters, digits and dashes, e.g. "hadoop"'),
  services: z
    .record(
      z.string().regex(NAME, 'a service name is lowercase letters, digits and dashes'),
      z.strictObject({
        charm: z.string().min(1, 'name the charm folder, relative to the bundle file'),
        units: z.number().int().min(1, 'a service needs at least one unit (its tags tell the mesh its endpoints)').max(100).optional(),
        to: z.array(z.union([z.string(), z.number().int().min(0)]).transform(String)).min(1, 'to: lists a machine per unit, e.g. [0, 1]').max(100).optional(),
        options: z.record(z.string(), jsonValue).default({}),
        dashboard: z.union([z.string().min(1), z.number().int().min(0).max(65535)]).optional(),
      }),
    )
    .refine((s) => Object.keys(s).length > 0, 'a bundle needs at least one service'),
  machines: z
    .record(
      z.string(),
      z.union([
        z.literal('local'),
        z.strictObject({
          ssh: z.string().min(1, 'ssh: user@host[:port]'),
          dir: z.string().regex(/^\/[^\0]*$/, 'dir is an absolute path on the machine, e.g. /var/lib/rhizome').optional(),
        }),
      ]),
    )
    .default({}),
  relations: z
    .array(z.tuple([z.string().regex(ENDPOINT_REF, 'an endpoint is SERVICE:ENDPOINT'), z.string().regex(ENDPOINT_REF, 'an endpoint is SERVICE:ENDPOINT')]))
    .default([]),
});

/** Parses bundle text (YAML or JSON); relative charm paths resolve against the bundle's folder. */
export function parseBundle(text: string, file = '<inline>'): Bundle {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new AgentError('AGENT_ERR_BAD_BUNDLE', `${file} is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  const parsed = bundleSchema.safeParse(raw);
  if (!parsed.success) {
    throw new AgentError('AGENT_ERR_BAD_BUNDLE', `${file}: ${formatIssues(parsed.error.issues)}`);
  }
  const b = parsed.data;
  const base = file === '<inline>' ? process.cwd() : dirname(file);
  const services: Record<string, BundleService> = {};
  const machines: Record<string, BundleMachine> = {};
  // Every problem found past the shape is reported at once, not one per deploy attempt.
  const problems: string[] = [];
  for (const [id, m] of Object.entries(b.machines)) {
    if (!MACHINE_ID.test(id)) {
      problems.push(`machines.${id}: a machine id is a number, e.g. "0"`);
      continue;
    }
    if (m === 'local') machines[id] = Object.freeze({ id, local: true });
    else {
      try {
        parseSshTarget(m.ssh.replace(/^ssh:/, ''));
      } catch (err) {
        problems.push(`machines.${id}.ssh: ${(err as Error).message}`);
        continue;
      }
      machines[id] = Object.freeze({ id, ssh: m.ssh.replace(/^ssh:/, ''), dir: m.dir ?? DEFAULT_MACHINE_DIR });
    }
  }
  for (const [name, s] of Object.entries(b.services)) {
    const units = s.units ?? s.to?.length ?? 1;
    if (s.to !== undefined) {
      if (s.to.length !== units) problems.push(`services.${name}.to: names ${s.to.length} machine(s) for ${units} unit(s); give one machine per unit (or leave out units)`);
      for (const [i, id] of s.to.entries()) {
        if (!machines[id] && b.machines[id] === undefined) problems.push(`services.${name}.to.${i}: machine "${id}" is not in machines (${Object.keys(b.machines).join(', ') || 'none declared'})`);
      }
    }
    if (s.dashboard !== undefined) {
      try {
        const { port } = parseDashboardAddress(s.dashboard);
        // Two units of the service on one machine cannot both listen on one fixed port.
        const shared = s.to === undefined ? units > 1 : new Set(s.to).size < s.to.length;
        if (shared && port !== 0) problems.push(`services.${name}.dashboard: units of ${name} share a machine and cannot all serve port ${port}; use 0 (a free port each, its URL in <data dir>/dashboard.url)`);
      } catch (err) {
        problems.push(`services.${name}.dashboard: ${(err as Error).message.replace(/^invalid agent configuration: /, '')}`);
      }
    }
    services[name] = Object.freeze({
      name,
      charmDir: resolve(base, s.charm),
      units,
      ...(s.to ? { to: Object.freeze([...s.to]) } : {}),
      options: Object.freeze({ ...s.options }),
      ...(s.dashboard !== undefined ? { dashboard: s.dashboard } : {}),
    });
  }
  for (const [i, [x, y]] of b.relations.entries()) {
    for (const [j, ref] of [x, y].entries()) {
      const svc = ref.split(':')[0]!;
      if (!services[svc]) problems.push(`relations.${i}.${j}: service "${svc}" is not in services (${Object.keys(services).join(', ')})`);
    }
  }
  if (problems.length > 0) throw bundleError(file, problems);
  return Object.freeze({ file, name: b.name, services: Object.freeze(services), machines: Object.freeze(machines), relations: Object.freeze(b.relations.map(([x, y]) => Object.freeze([x, y] as const))) });
}

/** One error for a bundle's problems: inline when there is one, else one per line. */
export function bundleError(file: string, problems: readonly string[], code: AgentErrorCode = 'AGENT_ERR_BAD_BUNDLE'): AgentError {
  if (problems.length === 1) return new AgentError(code, `${file}: ${problems[0]}`);
  return new AgentError(code, `${file} has ${problems.length} problems:\n${problems.map((p) => `  ${p}`).join('\n')}`);
}

/** Reads and parses a bundle file. */
export async function readBundle(path: string): Promise<Bundle> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new AgentError('AGENT_ERR_BAD_BUNDLE', `cannot read bundle ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseBundle(text, file);
}

/**
 * Loads every charm of the bundle and checks its relations; returns each
 * service's metadata. `modules` maps a service to its compiled charm (see
 * charm/compile.ts); a service without one loads as `loadCharm` does.
 * `known` are problems found before (charms that did not compile: not
 * loaded again), reported with the rest.
 */
export async function checkBundle(bundle: Bundle, modules: Readonly<Record<string, string>> = {}, known: readonly string[] = []): Promise<Record<string, CharmMetadata>> {
  const metadata: Record<string, CharmMetadata> = {};
  const problems = [...known];
  const failed = new Set(known.map((p) => /^services\.([^.]+)\./.exec(p)?.[1]).filter((x): x is string => x !== undefined));
  for (const s of Object.values(bundle.services)) {
    if (failed.has(s.name)) continue;
    try {
      metadata[s.name] = (await loadCharm(s.charmDir, modules[s.name])).metadata;
    } catch (err) {
      problems.push(`services.${s.name}.charm: ${(err as Error).message}`);
    }
  }
  for (const [i, [x, y]] of bundle.relations.entries()) {
    const [sx, ex] = x.split(':') as [string, string];
    const [sy, ey] = y.split(':') as [string, string];
    // A relation of a charm that did not load is checked once it loads.
    if (metadata[sx] === undefined || metadata[sy] === undefined) continue;
    try {
      checkRelation({ service: sx, endpoint: ex, metadata: metadata[sx] }, { service: sy, endpoint: ey, metadata: metadata[sy] });
    } catch (err) {
      problems.push(`relations.${i}: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw bundleError(bundle.file, problems);
  return metadata;
}
