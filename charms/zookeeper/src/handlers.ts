/**
 * The zookeeper unit's handlers. One reconcile step does the work; the
 * handlers only say when it runs.
 *
 *   start               (start)                       reconcile
 *   ensemble-<event>    joined, changed, departed     reconcile
 *   serve-clients       clients joined                publish this server's client address
 *   refresh-status      zk/data/version-2/currentEpoch changed (a quorum formed or a new leader was elected)
 *                                                     read the role with `srvr` and show it
 *
 * Reconcile (DESIGN: the charm keeps reacting until nothing is due):
 *   - No ensemble yet (the peers' application bag is empty): the leader
 *     unit forms one of itself (a secret, config, server), and publishes
 *     the committed membership; the others wait for it.
 *   - An ensemble exists: a unit not yet configured starts its server with
 *     the committed membership plus itself (ZooKeeper's procedure for
 *     adding a server) and says `started`.
 *   - The leader unit adds every started peer that is not a member with
 *     ZooKeeper's dynamic reconfiguration (`reconfig -add`), one call for
 *     all of them, and publishes the new membership. No server restarts,
 *     so the ensemble never loses quorum by growing.
 * A unit that departs (killed, partitioned) stays a member: ZooKeeper
 * tolerates the loss of a minority, and the unit's server rejoins with its
 * own data when it comes back.
 */
import { randomBytes } from 'node:crypto';
import type { UnitContext } from '@rhizome/agent';
import { all, event, fact, relationEvent, relationFact, type HandlerContext, type HandlerSpec } from '@rhizome/engine';
import { relation } from '@rhizome/relations';
import { parseZookeeperConfig, type ZookeeperConfig } from './config';
import { zookeeper, zookeeperEnsemble, type ZkServer } from './interfaces';
import {
  INIT_LIMIT_TICKS,
  isConfigured,
  membershipOf,
  reconfigAdd,
  resetServer,
  serverMode,
  serverOf,
  serverPid,
  startServer,
  SYNC_LIMIT_TICKS,
  waitServing,
  stopServer,
  writeInitialConfig,
  zkFiles,
  type Membership,
} from './server';

export const ENSEMBLE_ENDPOINT = 'ensemble';
export const CLIENTS_ENDPOINT = 'clients';

const sameMembers = (a: readonly ZkServer[], b: readonly ZkServer[]): boolean => a.length === b.length && a.every((s, i) => JSON.stringify(s) === JSON.stringify(b[i]));

/** The committed membership, asked of the first member that answers (this unit's server first). */
async function currentMembership(candidates: readonly ZkServer[]): Promise<Membership | undefined> {
  for (const s of candidates) {
    const m = await membershipOf(s.host, s.clientPort);
    if (m !== undefined) return m;
  }
  return undefined;
}

/**
 * Reads the server's role with `srvr` and shows it. Which way to wait (bounded) follows from the mesh:
 * with a majority of the members' units in it, a server without a mode is electing (wait for a mode,
 * up to initLimit ticks); without one, ZooKeeper drops its mode once syncLimit ticks pass without a
 * quorum (wait for that, so status does not go on saying `leader` of an ensemble that lost its quorum).
 */
async function showRole(ctx: HandlerContext, cfg: ZookeeperConfig, me: ZkServer, servers: readonly ZkServer[], peersUp: ReadonlySet<number>): Promise<void> {
  const members = servers.length;
  const majority = Math.floor(members / 2) + 1;
  const reachable = servers.filter((s) => s.id === me.id || peersUp.has(s.id)).length;
  const quorate = reachable >= majority;
  const deadline = Date.now() + (quorate ? INIT_LIMIT_TICKS : SYNC_LIMIT_TICKS) * cfg.tickMs + 2_000;
  let mode = await serverMode(me.host, me.clientPort);
  while ((mode === undefined) === quorate && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    mode = await serverMode(me.host, me.clientPort);
  }
  ctx.set('zookeeper.role', mode ?? 'none');
  const missing = reachable < members ? `, ${members - reachable} unreachable` : '';
  if (mode !== undefined) ctx.setStatus('active', `${mode}, ensemble of ${members}${missing} (client ${me.host}:${me.clientPort})`);
  else if (!quorate) {
    ctx.setStatus('blocked', `no quorum: ${reachable} of the ensemble's ${members} servers reachable, ${majority} needed; ZooKeeper serves again once enough of them are back`);
  } else ctx.setStatus('maintenance', `server ${me.id} is not serving yet (electing a leader): ensemble of ${members}`);
}

/** The server ids of the peer units in the mesh now (departed ones are gone from the relation). */
function peersUp(rel: { all(): readonly { data: { server: ZkServer } }[] }): Set<number> {
  return new Set(rel.all().map(({ data }) => data.server.id));
}

export function zookeeperHandlers(unit: UnitContext): HandlerSpec[] {
  const cfg: ZookeeperConfig = parseZookeeperConfig(unit.config);
  const me = serverOf(unit.unit, unit.address, cfg);

  const reconcile = async (ctx: HandlerContext): Promise<void> => {
    const rel = relation(ctx, ENSEMBLE_ENDPOINT, zookeeperEnsemble.peer);
    const app = rel.app();
    let servers = app?.servers ?? [];
    let secret = app?.secret;

    if (servers.length === 0 || secret === undefined) {
      if (!rel.isLeader()) {
        rel.publish({ server: me, started: false });
        ctx.setStatus('waiting', `waiting for ${rel.leader()} to form the ensemble`);
        return;
      }
      // Form the ensemble of this one server; the others are added as they start.
      secret = randomBytes(24).toString('base64url');
      await writeInitialConfig(unit.dir, cfg, me, [me]);
      await startServer(unit.dir, cfg, secret);
      await waitServing(me.host, me.clientPort);
      const m = await currentMembership([me]);
      if (m === undefined) throw new Error(`zookeeper server ${me.id} started but does not report its membership (conf)`);
      rel.publishApp({ servers: m.servers, configVersion: m.version, secret });
      servers = m.servers;
      ctx.note(`formed a new ensemble: server ${me.id}`);
    } else {
      const member = servers.some((s) => s.id === me.id);
      if (!member && (await isConfigured(unit.dir)) && (await serverPid(unit.dir)) !== undefined) {
        // Two units that each formed an ensemble before seeing the other: the
        // one whose ensemble lost (the application bag names the other) holds
        // only its own fresh server; it starts over as a joiner.
        const own = await membershipOf(me.host, me.clientPort);
        if (own !== undefined && own.servers.length === 1 && own.servers[0]!.id === me.id) {
          ctx.note(`server ${me.id} formed an ensemble of its own; the cluster's is [${servers.map((s) => s.id).join(', ')}]: starting over as a joiner`);
          await stopServer(unit.dir);
          await resetServer(unit.dir);
        }
      }
      if (await writeInitialConfig(unit.dir, cfg, me, member ? servers : [...servers, me])) {
        ctx.note(member ? `configured as member ${me.id}` : `configured to join as server ${me.id}`);
      }
      await startServer(unit.dir, cfg, secret);
      // A joiner says `started` only once synced with the ensemble: the leader's reconfig needs its ack.
      // A member does not wait: its ensemble may have lost its quorum (a majority of its machines down),
      // which is no failure of this run; ZooKeeper recovers by itself and status says so meanwhile.
      if (!member) await waitServing(me.host, me.clientPort);
    }
    rel.publish({ server: me, started: true });

    if (rel.isLeader()) {
      const committed = await currentMembership([me, ...servers.filter((s) => s.id !== me.id)]);
      if (committed !== undefined) {
        const pending = [
          ...(committed.servers.some((s) => s.id === me.id) ? [] : [me]),
          ...rel
            .all()
            .filter(({ data }) => data.started && !committed.servers.some((s) => s.id === data.server.id))
            .map(({ data }) => data.server),
        ];
        let next: Membership = committed;
        // Growing needs a quorum; without one the joiners wait for the event that brings it back.
        if (pending.length > 0 && (await serverMode(me.host, me.clientPort)) !== undefined) {
          const through = committed.servers.find((s) => s.id === me.id) ?? committed.servers[0]!;
          next = await reconfigAdd(cfg, through.host, through.clientPort, secret, pending);
          ctx.note(`added server ${pending.map((s) => s.id).join(', ')} to the ensemble (config version ${next.version})`);
        }
        if (!sameMembers(next.servers, servers) || app?.configVersion !== next.version) {
          rel.publishApp({ servers: next.servers, configVersion: next.version });
          servers = next.servers;
        }
      }
    }
    await showRole(ctx, cfg, me, servers, peersUp(rel));
  };

  return [
    { name: 'start', atStartup: true, run: reconcile },
    ...(['joined', 'changed', 'departed'] as const).map((name): HandlerSpec => ({ name: `ensemble-${name}`, when: relationEvent(ENSEMBLE_ENDPOINT, name), run: reconcile })),
    {
      name: 'serve-clients',
      when: relationFact(CLIENTS_ENDPOINT, 'joined'),
      run(ctx) {
        relation(ctx, CLIENTS_ENDPOINT, zookeeper.provider).publish({ host: me.host, port: me.clientPort });
      },
    },
    {
      name: 'refresh-status',
      when: all(
        event('file.changed', (p) => typeof p === 'object' && p !== null && (p as { path?: unknown }).path === zkFiles(unit.dir).currentEpoch),
        fact('zookeeper.role'),
      ),
      async run(ctx) {
        const rel = relation(ctx, ENSEMBLE_ENDPOINT, zookeeperEnsemble.peer);
        await showRole(ctx, cfg, me, rel.app()?.servers ?? [], peersUp(rel));
      },
    },
  ];
}
