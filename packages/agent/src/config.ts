/**
 * An agent's configuration: one unit, its charm, where it keeps its state and
 * how it reaches the mesh. It comes from a config file (YAML or JSON) and/or
 * command-line flags (flags win), and is parsed here, once, with zod: every
 * field is checked and every mistake is reported with its path.
 *
 * @example
 * const config = parseAgentConfig({ unit: 'web/0', charmDir: './charms/web', dataDir: '.rhizome/web-0' });
 */
import { readFile } from 'node:fs/promises';
import { resolve, dirname } from 'node:path';
import * as z from 'zod';
import type { Json } from '@rhizome/engine';
import { parseAgentConfigText } from './agent-config-file';
import { AgentError } from './errors';
import { isLoopback, parseHostPort, type HostPort } from './internal/address';
import { defaultProfileFor, PROFILE_NAMES, type ProfileName } from './internal/profiles';
import type { LogLevel } from './log/logger';

export interface AgentConfig {
  /** Unit name, `service/N`. */
  readonly unit: string;
  /** Service name: the part of `unit` before "/". */
  readonly service: string;
  /** Folder holding the charm's `charm.ts` (absolute): the charm's own files (playbooks...) live there. */
  readonly charmDir: string;
  /**
   * The charm compiled to JavaScript (absolute; `deploy` and `rhizome
   * build-charm` write it, see charm/compile.ts). Without it the agent
   * compiles `charmDir` itself at start (slower, and not type-checked).
   */
  readonly charmModule?: string;
  /** State directory (absolute): snapshot, log, token, control.json, agent.log, the unit's working dir. */
  readonly dataDir: string;
  /** Extra gossip tags (the agent adds its own: service, endpoints, control URL). */
  readonly tags: Readonly<Record<string, string>>;
  /** Gossip bind host (`bind` / `--bind HOST[:PORT]`; a wildcard listens on every interface). */
  readonly bindHost: string;
  /**
   * Gossip port; 0 picks a free one (and a restart takes it again, see
   * mesh/rejoin.ts). Default: Serf's 7946 on an address other hosts can
   * reach, 0 on loopback (where one host runs many units).
   */
  readonly bindPort: number;
  /** What other agents dial (`advertise` / `--advertise HOST[:PORT]`); absent: derived from the bind (see internal/address.ts). */
  readonly advertise?: HostPort;
  /** Gossip timings (`local`, `lan`, `wan`); default `local` on a loopback bind, `lan` otherwise. */
  readonly profile: ProfileName;
  /** Gossip addresses (`host:port`) to join. */
  readonly seeds: readonly string[];
  /** File of base64 keys, one per line (first = primary); encrypts gossip. */
  readonly keyringFile?: string;
  /** Run unencrypted on a non-loopback address (refused otherwise); warned about at start and in status. */
  readonly insecure: boolean;
  /** Cluster label: agents with different labels never merge (memberlist's Label). */
  readonly label?: string;
  readonly logLevel: LogLevel;
  /** Control API port; 0 picks a free one. */
  readonly controlPort: number;
  /** Charm config options, merged over the charm's defaults. */
  readonly options: Readonly<Record<string, Json>>;
  /** Write log lines to stdout as well as to agent.log (foreground use). */
  readonly logToStdout: boolean;
  /** Records per snapshot: after this many log records the state is snapshotted and the log restarted. */
  readonly snapshotEvery: number;
  /**
   * Serve the dashboard (`rhizome dashboard`'s page) from this agent
   * (`dashboard` / `--dashboard [HOST:]PORT`): host 127.0.0.1 unless another
   * address is named; port 0 picks one. Absent: no dashboard.
   */
  readonly dashboard?: { readonly host: string; readonly port: number };
}

export const DEFAULT_AGENT_CONFIG = Object.freeze({
  // Loopback: a local deployment must never be reachable from elsewhere by accident.
  bindHost: '127.0.0.1',
  // Let the OS pick: several agents per machine (and per process) never collide.
  bindPort: 0,
  controlPort: 0,
  logLevel: 'info' as LogLevel,
  logToStdout: false,
  // A snapshot costs one write of the whole state; 500 small records replay in milliseconds.
  snapshotEvery: 500,
  // The dashboard can resolve units: off loopback only when an address is named.
  dashboardHost: '127.0.0.1',
});

const UNIT_RE = /^[a-z][a-z0-9-]{0,62}\/\d{1,6}$/;
const ADDRESS_RE = /^(\[[0-9A-Fa-f:.]+\]|[^\s:/[\]]+):\d{1,5}$/;
/** memberlist allows 255 bytes; a label is a name, not a payload. */
export const LABEL_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const jsonValue: z.ZodType<Json> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(jsonValue), z.record(z.string(), jsonValue)]),
);

const configSchema = z.strictObject({
  unit: z.string().regex(UNIT_RE, 'a unit name looks like "service/0" (lowercase letters, digits and dashes, a slash, a number)'),
  charmDir: z.string().min(1, 'name the charm folder (the one holding charm.ts)'),
  charmModule: z.string().min(1, 'name the compiled charm file (rhizome build-charm DIR prints it)').optional(),
  dataDir: z.string().min(1, 'name a data directory'),
  tags: z.record(z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'a tag name is lowercase letters, digits, "_" and "-"'), z.string().max(256)).optional(),
  bind: z.string().min(1).optional(),
  advertise: z.string().min(1).optional(),
  profile: z.enum(PROFILE_NAMES).optional(),
  bindHost: z.string().min(1).optional(),
  bindPort: z.number().int().min(0).max(65535).optional(),
  seeds: z.array(z.string().regex(ADDRESS_RE, 'a seed is host:port, e.g. 10.0.0.5:7946 or [fd00::5]:7946')).optional(),
  keyringFile: z.string().min(1).optional(),
  insecure: z.boolean().optional(),
  label: z.string().regex(LABEL_RE, 'a label is 1-64 letters, digits, ".", "_" or "-" (e.g. rhizome-hadoop)').optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  controlPort: z.number().int().min(0).max(65535).optional(),
  options: z.record(z.string(), jsonValue).optional(),
  logToStdout: z.boolean().optional(),
  snapshotEvery: z.number().int().min(1).optional(),
  dashboard: z.union([z.string().min(1), z.number().int().min(0).max(65535)]).optional(),
});

export type AgentConfigInput = z.input<typeof configSchema>;

/** Formats zod issues as `path: message` lines. */
export function formatIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues.map((i) => `${i.path.length > 0 ? i.path.map(String).join('.') : '(root)'}: ${i.message}`).join('; ');
}

/** The gossip port an agent bound off loopback listens on when none is given (Serf's). */
export const DEFAULT_GOSSIP_PORT = 7946;

/** Checks an agent configuration (untrusted: a file or flags). Relative paths resolve against `baseDir` (default: cwd). */
export function parseAgentConfig(input: unknown, baseDir = process.cwd()): AgentConfig {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    throw new AgentError('AGENT_ERR_BAD_CONFIG', `invalid agent configuration: ${formatIssues(parsed.error.issues)}`);
  }
  const c = parsed.data;
  if (c.bind !== undefined && (c.bindHost !== undefined || c.bindPort !== undefined)) {
    throw new AgentError('AGENT_ERR_BAD_CONFIG', 'invalid agent configuration: give either bind (HOST[:PORT]) or its aliases bindHost/bindPort, not both');
  }
  const bind = c.bind !== undefined ? parseHostPort(c.bind, 'bind') : undefined;
  const bindHost = bind?.host ?? c.bindHost ?? DEFAULT_AGENT_CONFIG.bindHost;
  const advertise = c.advertise !== undefined ? parseHostPort(c.advertise, 'advertise') : undefined;
  const dashboard = c.dashboard !== undefined ? parseDashboardAddress(c.dashboard) : undefined;
  return Object.freeze({
    unit: c.unit,
    service: c.unit.split('/')[0]!,
    charmDir: resolve(baseDir, c.charmDir),
    ...(c.charmModule !== undefined ? { charmModule: resolve(baseDir, c.charmModule) } : {}),
    dataDir: resolve(baseDir, c.dataDir),
    tags: Object.freeze({ ...(c.tags ?? {}) }),
    bindHost,
    bindPort: bind?.port ?? c.bindPort ?? (isLoopback(bindHost) ? DEFAULT_AGENT_CONFIG.bindPort : DEFAULT_GOSSIP_PORT),
    ...(advertise !== undefined ? { advertise } : {}),
    profile: c.profile ?? defaultProfileFor(bindHost),
    seeds: Object.freeze([...(c.seeds ?? [])]),
    ...(c.keyringFile !== undefined ? { keyringFile: resolve(baseDir, c.keyringFile) } : {}),
    insecure: c.insecure ?? false,
    ...(c.label !== undefined ? { label: c.label } : {}),
    logLevel: c.logLevel ?? DEFAULT_AGENT_CONFIG.logLevel,
    controlPort: c.controlPort ?? DEFAULT_AGENT_CONFIG.controlPort,
    options: Object.freeze({ ...(c.options ?? {}) }),
    logToStdout: c.logToStdout ?? DEFAULT_AGENT_CONFIG.logToStdout,
    snapshotEvery: c.snapshotEvery ?? DEFAULT_AGENT_CONFIG.snapshotEvery,
    ...(dashboard !== undefined ? { dashboard } : {}),
  });
}

/** `[HOST:]PORT` or a port number: loopback unless a host is named, and the port always named (0 picks one). */
export function parseDashboardAddress(value: string | number): { host: string; port: number } {
  if (typeof value === 'number') return { host: DEFAULT_AGENT_CONFIG.dashboardHost, port: value };
  if (/^\d+$/.test(value)) {
    if (Number(value) > 65535) throw new AgentError('AGENT_ERR_BAD_CONFIG', `invalid agent configuration: dashboard port ${value} is not in 0..65535`);
    return { host: DEFAULT_AGENT_CONFIG.dashboardHost, port: Number(value) };
  }
  const { host, port } = parseHostPort(value, 'dashboard');
  if (port === undefined) {
    throw new AgentError('AGENT_ERR_BAD_CONFIG', `invalid agent configuration: dashboard ${JSON.stringify(value)} names no port; write [HOST:]PORT, e.g. 8080, 127.0.0.1:8080 or 0 (a free port)`);
  }
  return { host, port };
}

/** Reads a config file (YAML or JSON), merges `overrides` over it (flags win) and parses the result. */
export async function loadAgentConfig(file: string | undefined, overrides: Record<string, unknown> = {}): Promise<AgentConfig> {
  let fromFile: Record<string, unknown> = {};
  let baseDir = process.cwd();
  if (file !== undefined) {
    const path = resolve(file);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new AgentError('AGENT_ERR_BAD_CONFIG', `cannot read agent config file ${path}: ${(err as Error).message}`, { cause: err });
    }
    let value: unknown;
    try {
      value = await parseAgentConfigText(text);
    } catch (err) {
      throw new AgentError('AGENT_ERR_BAD_CONFIG', `agent config file ${path} is not valid YAML/JSON: ${(err as Error).message}`, { cause: err });
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new AgentError('AGENT_ERR_BAD_CONFIG', `agent config file ${path} must hold a mapping like { unit: web/0, charmDir: ..., dataDir: ... }`);
    }
    fromFile = value as Record<string, unknown>;
    baseDir = dirname(path);
  }
  const merged: Record<string, unknown> = { ...fromFile };
  // A bind given one way on the command line replaces the file's, given either way.
  if (overrides['bind'] !== undefined || overrides['bindHost'] !== undefined || overrides['bindPort'] !== undefined) {
    delete merged['bind'];
    delete merged['bindHost'];
    delete merged['bindPort'];
  }
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) merged[k] = v;
  // Charm options from flags change those keys only: the file's other options stay.
  const fileOptions = fromFile['options'];
  if (overrides['options'] !== undefined && fileOptions !== null && typeof fileOptions === 'object' && !Array.isArray(fileOptions)) {
    merged['options'] = { ...(fileOptions as Record<string, unknown>), ...(overrides['options'] as Record<string, unknown>) };
  }
  // Paths given as flags are relative to the cwd, paths in the file to the file.
  for (const k of ['charmDir', 'charmModule', 'dataDir', 'keyringFile'] as const) {
    if (typeof overrides[k] === 'string') merged[k] = resolve(overrides[k]);
  }
  return parseAgentConfig(merged, baseDir);
}
