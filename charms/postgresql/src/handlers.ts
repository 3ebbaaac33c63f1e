/**
 * The postgresql unit's handlers.
 *
 *   start               (start)                      reconcile
 *   replicas-<event>    joined, changed, departed    reconcile
 *   serve-clients       db joined, or the peers'     publish the primary's address and the
 *                       application bag changed       application's credentials to clients
 *
 * Reconcile:
 *   - No primary yet (the peers' application bag names none): the leader
 *     unit becomes it: initdb, start, roles and database with generated
 *     passwords, then it publishes who the primary is and the credentials
 *     in the application bag. The others wait.
 *   - The primary keeps its server running and reports how many replicas stream.
 *   - A replica makes its cluster once with pg_basebackup from the primary
 *     (following it from then on), keeps its server running and reports
 *     whether it streams and its replay lag.
 * The primary does not move when its unit departs (no automatic failover:
 * promoting a replica while the old primary may still accept writes would
 * fork the data); the replicas keep serving reads and catch up when it returns.
 */
import { randomBytes } from 'node:crypto';
import type { UnitContext } from '@rhizome/agent';
import { relationEvent, relationFact, type HandlerContext, type HandlerSpec } from '@rhizome/engine';
import { relation } from '@rhizome/relations';
import { parsePostgresqlConfig } from './config';
import { pgsql, postgresqlPeers } from './interfaces';
import { initPrimary, initReplica, isInitialized, pgPaths, provision, replicaState, serverUser, startServer, stopServer, streamingReplicas } from './server';
import { access, rm } from 'node:fs/promises';
import { join } from 'node:path';

export const PEERS_ENDPOINT = 'replicas';
export const CLIENTS_ENDPOINT = 'db';

const secret = (): string => randomBytes(24).toString('base64url');

export function postgresqlHandlers(unit: UnitContext): HandlerSpec[] {
  const cfg = parsePostgresqlConfig(unit.config);
  const n = Number(unit.unit.slice(unit.unit.lastIndexOf('/') + 1));
  const me = { host: unit.address, port: cfg.port + n };
  const paths = pgPaths(unit.dir, cfg);

  const reconcile = async (ctx: HandlerContext): Promise<void> => {
    const user = await serverUser(cfg);
    const rel = relation(ctx, PEERS_ENDPOINT, postgresqlPeers.peer);
    const published = rel.app();
    let app: Required<NonNullable<typeof published>>;
    if (published?.primary !== undefined && published.password !== undefined && published.replicationPassword !== undefined && published.database !== undefined && published.user !== undefined) {
      app = published as Required<NonNullable<typeof published>>;
    } else {
      if (!rel.isLeader()) {
        rel.publish({ ...me, role: 'starting' });
        ctx.setStatus('waiting', `waiting for ${rel.leader()} to become the primary`);
        return;
      }
      const creds = { database: cfg.database, user: cfg.user, password: secret(), replicationPassword: secret() };
      await initPrimary(unit.dir, paths, user);
      await startServer(paths, me, user);
      await provision(paths, me.port, creds);
      app = { primary: { unit: unit.unit, ...me }, ...creds };
      rel.publishApp(app);
      ctx.note(`became the primary (${me.host}:${me.port}); database ${creds.database} owned by ${creds.user}`);
    }
    const { primary } = app;

    if (primary.unit === unit.unit) {
      await initPrimary(unit.dir, paths, user);
      await startServer(paths, me, user);
      rel.publish({ ...me, role: 'primary' });
      ctx.set('postgresql.role', 'primary');
      // A replica says `replica` once its receiver streams; the primary's view may lag a moment behind.
      const expected = rel.all().filter(({ data }) => data.role === 'replica').length;
      let streaming = await streamingReplicas(paths, me.port);
      for (let i = 0; i < 25 && streaming < expected; i++) {
        await new Promise((r) => setTimeout(r, 200));
        streaming = await streamingReplicas(paths, me.port);
      }
      ctx.setStatus('active', `primary on ${me.host}:${me.port}, ${streaming} replica(s) streaming`);
      return;
    }

    // A unit that made itself a primary before it saw the real one (two
    // leaders at once during start-up) holds no data anyone was given: it
    // starts over as a replica. A replica's cluster has standby.signal.
    const standby = await access(join(paths.data, 'standby.signal')).then(
      () => true,
      () => false,
    );
    if ((await isInitialized(paths)) && !standby) {
      ctx.note(`this unit's cluster is a primary but ${primary.unit} is the primary: starting over as its replica`);
      await stopServer(paths, user);
      await rm(paths.data, { recursive: true, force: true });
    }
    await initReplica(unit.dir, paths, user, primary, app.replicationPassword);
    await startServer(paths, me, user);
    ctx.set('postgresql.role', 'replica');
    // The primary's unit gone from the mesh (its machine down or cut off): the WAL receiver goes on
    // reading `streaming` until wal_receiver_timeout, so status said streaming, lag 0, for a minute.
    // No failover here (a promotion by one side of a partition is how data forks): say so.
    if (!rel.all().some(({ unit: u }) => u === primary.unit)) {
      rel.publish({ ...me, role: 'replica' });
      ctx.setStatus('waiting', `replica of ${primary.unit} (${primary.host}:${primary.port}), which is not in the mesh: not streaming, reads serve the WAL replayed so far; no automatic failover`);
      return;
    }
    // The WAL receiver connects within a moment of the start.
    let state = await replicaState(paths, me.port);
    for (let i = 0; i < 25 && !state.streaming; i++) {
      await new Promise((r) => setTimeout(r, 200));
      state = await replicaState(paths, me.port);
    }
    // Published once streaming, so the primary's count (it re-runs on this change) includes this replica.
    rel.publish({ ...me, role: 'replica' });
    if (state.streaming) ctx.setStatus('active', `replica of ${primary.unit} (${primary.host}:${primary.port}), streaming, replay lag ${state.lagBytes} bytes`);
    else ctx.setStatus('maintenance', `replica of ${primary.unit} (${primary.host}:${primary.port}), not streaming (primary unreachable?)`);
  };

  const serveClients = (ctx: HandlerContext): void => {
    const app = relation(ctx, PEERS_ENDPOINT, postgresqlPeers.peer).app();
    const clients = relation(ctx, CLIENTS_ENDPOINT, pgsql.provider);
    if (clients.relationIds().length === 0 || app?.primary === undefined || app.password === undefined || app.database === undefined || app.user === undefined) return;
    clients.publish({ host: app.primary.host, port: app.primary.port, database: app.database, user: app.user, password: app.password });
  };

  return [
    { name: 'start', atStartup: true, run: reconcile },
    ...(['joined', 'changed', 'departed'] as const).map((name): HandlerSpec => ({ name: `replicas-${name}`, when: relationEvent(PEERS_ENDPOINT, name), run: reconcile })),
    { name: 'serve-clients', when: relationFact(CLIENTS_ENDPOINT, 'joined'), run: serveClients },
    { name: 'serve-clients-on-change', when: relationEvent(PEERS_ENDPOINT, 'changed'), priority: -1, run: serveClients },
  ];
}
