/**
 * The postgresql charm's options. `port` is a base: unit N listens on
 * port + N (several units fit on one machine). The system cluster (5432) is
 * never used: each unit runs its own server from the package's binaries.
 */
import * as z from 'zod';
import type { Json } from '@rhizome/engine';

export const DEFAULT_POSTGRESQL_CONFIG = Object.freeze({
  port: 15432,
  database: 'app',
  user: 'app',
  /** The system user the server runs as when the agent runs as root (PostgreSQL refuses root). */
  'run-as': 'postgres',
  /** Where each unit's cluster lives when the server runs as another user: a folder that user owns. */
  'data-root': '/var/lib/postgresql/rhizome',
}) satisfies Record<string, Json>;

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;
const schema = z.object({
  port: z.number().int().min(1024).max(65000),
  database: z.string().regex(IDENT, 'a database name is lowercase letters, digits and _'),
  user: z.string().regex(IDENT, 'a user name is lowercase letters, digits and _'),
  'run-as': z.string().min(1),
  'data-root': z.string().startsWith('/', 'data-root must be an absolute path'),
});

export interface PostgresqlConfig {
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly runAs: string;
  readonly dataRoot: string;
}

export function parsePostgresqlConfig(raw: Readonly<Record<string, Json>>): PostgresqlConfig {
  const parsed = schema.safeParse({ ...DEFAULT_POSTGRESQL_CONFIG, ...raw });
  if (!parsed.success) throw new Error(`invalid postgresql options: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const c = parsed.data;
  return { port: c.port, database: c.database, user: c.user, runAs: c['run-as'], dataRoot: c['data-root'] };
}
