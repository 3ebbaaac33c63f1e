/**
 * postgresql: real PostgreSQL servers from Debian's package
 * (`scripts/ensure-apt.sh postgresql`), one per unit: the leader of the
 * peers endpoint `replicas` becomes the primary, every other unit a
 * streaming replica made with pg_basebackup. Clients relate to `db`
 * (interface `pgsql`) and receive the primary's address and generated
 * credentials over the relation, never through logs. Each server runs on a
 * high port (`port` + unit number), never the system cluster; it is a
 * declared workload, so it never outlives its unit, and it stops when the
 * agent stops. Status shows primary/replica, streaming and replay lag.
 */
import { defineCharm } from '@rhizome/agent';
import { DEFAULT_POSTGRESQL_CONFIG, parsePostgresqlConfig } from './src/config';
import { postgresqlHandlers } from './src/handlers';
import { pgsql, postgresqlPeers } from './src/interfaces';
import { pgPaths, postgresWorkload, serverUser, stopServer } from './src/server';

export default defineCharm({
  metadata: {
    name: 'postgresql',
    description: 'PostgreSQL: one primary, streaming replicas, credentials over pgsql',
    provides: { db: { interface: 'pgsql' } },
    peers: { replicas: { interface: 'postgresql-peers' } },
  },
  config: DEFAULT_POSTGRESQL_CONFIG,
  interfaces: [pgsql, postgresqlPeers],
  handlers: postgresqlHandlers,
  stop: async (unit) => {
    const cfg = parsePostgresqlConfig(unit.config);
    await stopServer(pgPaths(unit.dir, cfg), await serverUser(cfg));
  },
  workloads: (unit) => [postgresWorkload(pgPaths(unit.dir, parsePostgresqlConfig(unit.config)))],
});
