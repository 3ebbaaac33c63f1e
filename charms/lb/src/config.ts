/**
 * The lb's config, checked once at the boundary (it comes from a bundle).
 */
import type { Json } from '@rhizome/engine';

export const DEFAULT_LB_CONFIG = Object.freeze({
  /** Port the unit's nginx listens on (127.0.0.1). Pick a free high port per lb unit. */
  port: 18080,
  /** The nginx program; a name on PATH or a path. */
  'nginx-bin': 'nginx',
  /** Bound on one playbook run (ansible is slow on a busy machine; a hang is an error). */
  'playbook-timeout-ms': 180_000,
}) satisfies Record<string, Json>;

export interface LbConfig {
  readonly port: number;
  readonly nginxBin: string;
  readonly playbookTimeoutMs: number;
}

export class LbConfigError extends Error {
  readonly code = 'LB_ERR_BAD_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'LbConfigError';
  }
}

export function parseLbConfig(raw: Readonly<Record<string, Json>>): LbConfig {
  const c: Record<string, Json> = { ...DEFAULT_LB_CONFIG, ...raw };
  const port = c.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1024 || port > 65535) {
    throw new LbConfigError(`lb option "port" must be an unprivileged port (1024-65535) for the unit's own nginx, got ${JSON.stringify(port)}`);
  }
  const bin = c['nginx-bin'];
  if (typeof bin !== 'string' || bin === '') throw new LbConfigError(`lb option "nginx-bin" must be a program name or path, got ${JSON.stringify(bin)}`);
  const timeout = c['playbook-timeout-ms'];
  if (typeof timeout !== 'number' || !(timeout > 0)) throw new LbConfigError(`lb option "playbook-timeout-ms" must be a positive number, got ${JSON.stringify(timeout)}`);
  return { port, nginxBin: bin, playbookTimeoutMs: timeout };
}
