/**
 * Real services across hosts: a ZooKeeper ensemble and PostgreSQL
 * replication, each unit on its own host (network namespaces on one bridge,
 * test/hosts/), one real agent process per host bound to 0.0.0.0 and
 * advertising its host's address, the keyring on. The services' own
 * configuration holds the hosts' real addresses (ZooKeeper's membership,
 * the replicas' primary_conninfo), and data written through one host is
 * read through another, by the services' own clients run inside the hosts.
 *
 *   h1 10.233.1.1  zookeeper/0  postgresql/0
 *   h2 10.233.1.2  zookeeper/1  postgresql/1
 *   h3 10.233.1.3  zookeeper/2  postgresql/2
 */
import { access, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { Keyring } from '@rhizome/gossip';
import { rhizomeCommand } from '../packages/agent/src/runtime';
import { ROOT } from './e2e-support';
import { createHosts, netnsUnavailableReason, type Host, type HostNetwork, type HostProcess } from './hosts/index';
import { until } from '@rhizome/test-support';

const netns = await netnsUnavailableReason();
const missing = [
  (await access('/usr/share/java/zookeeper.jar').then(() => true, () => false)) ? undefined : 'zookeeper',
  (await readdir('/usr/lib/postgresql').then((v) => v.length > 0, () => false)) ? undefined : 'postgresql',
].filter(Boolean);
const reason = netns ?? (missing.length > 0 ? `${missing.join(' and ')} not installed (scripts/ensure-apt.sh zookeeper default-jre-headless postgresql)` : undefined);
if (reason) console.warn(`skipping the multi-host service tests: ${reason}`);

const ZK_GOSSIP = 23500;
const PG_GOSSIP = 23501;
const ADDR = ['10.233.1.1', '10.233.1.2', '10.233.1.3'];
const PG_PORT = 17432; // unit N listens on PG_PORT + N

describe.skipIf(reason !== undefined)(`real services across 3 hosts${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let net: HostNetwork;
  let tmp = '';
  const agents: HostProcess[] = [];
  const host = (i: number): Host => net.hosts[i]!;
  const dataDir = (service: string, i: number): string => join(tmp, `h${i + 1}`, `${service}-${i}`);

  /** One agent per host for unit SERVICE/i, seeded at host 1, keyring and label shared by the cluster. */
  async function startAgents(service: string, gossipPort: number, options: Record<string, unknown> = {}): Promise<void> {
    const key = Keyring.generateKey();
    for (let i = 0; i < 3; i++) {
      const dir = join(tmp, `h${i + 1}`);
      await mkdir(dir, { recursive: true });
      const keyring = join(dir, `${service}.keyring`);
      await writeFile(keyring, `${key}\n`, { mode: 0o600 });
      const file = join(dir, `${service}.json`);
      await writeFile(
        file,
        JSON.stringify({
          unit: `${service}/${i}`,
          charmDir: join(ROOT, 'charms', service),
          dataDir: dataDir(service, i),
          bind: `0.0.0.0:${gossipPort}`,
          advertise: ADDR[i],
          keyringFile: keyring,
          label: `rhizome-${service}-mh`,
          seeds: i === 0 ? [] : [`${ADDR[0]}:${gossipPort}`],
          options,
        }),
        { mode: 0o600 },
      );
      agents.push(host(i).spawn(process.execPath, [...rhizomeCommand(['agent', '--config', file, '--no-fsync']).args]));
    }
  }

  /** A four-letter word to a ZooKeeper server, asked from inside host i. */
  async function flw(i: number, word: string): Promise<string> {
    const script = `const s=require('net').connect(+process.argv[2],process.argv[1],()=>s.end(process.argv[3]));let b='';s.on('data',d=>b+=d);s.on('error',()=>{});s.on('close',()=>process.stdout.write(b))`;
    return (await host(i).exec(process.execPath, ['-e', script, ADDR[i]!, String(12181 + i), word], { timeoutMs: 10_000 })).stdout;
  }
  const zkCli = async (i: number, ...command: string[]): Promise<string> => {
    const r = await host(i).exec('java', ['-cp', '/usr/share/java/zookeeper.jar', 'org.apache.zookeeper.ZooKeeperMain', '-server', `${ADDR[i]}:${12181 + i}`, ...command], { timeoutMs: 30_000 });
    return r.stdout + r.stderr;
  };

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'rhizome-rs-'));
    net = await createHosts({ prefix: 'rs-svc', addresses: ADDR });
  }, 60_000);

  afterAll(async () => {
    // SIGTERM: each charm stops its server; cleanup then ends whatever still runs in the hosts.
    // All at once: each agent stops its own server, and waiting out six stops in turn took seconds.
    await Promise.all(agents.map((p) => p.stop('SIGTERM', 15_000).catch(() => undefined)));
    await net?.cleanup();
    // PostgreSQL clusters live under data-root when the agent is root (see charms/postgresql).
    for (let i = 0; i < 3; i++) {
      const link = join(dataDir('postgresql', i), 'unit', 'pg');
      const { realpath } = await import('node:fs/promises');
      const root = await realpath(link).catch(() => undefined);
      if (root?.startsWith('/var/lib/postgresql/rhizome/')) await rm(root, { recursive: true, force: true });
    }
    if (tmp && process.env['RHIZOME_KEEP_TMP'] === undefined) await rm(tmp, { recursive: true, force: true });
  }, 120_000);

  // The two services share the hosts, nothing else (their own gossip ports,
  // keyrings, labels, data dirs and server ports): they start at once, the
  // JVMs' start-up and election overlapping PostgreSQL's initdb and streaming.
  // Assertions use each test's own expect.
  it.concurrent('a ZooKeeper ensemble forms over the hosts\' addresses and serves data from any host', { timeout: 180_000 }, async ({ expect }) => {
    await startAgents('zookeeper', ZK_GOSSIP);
    const modes = await until('three servers serving one quorum', async () => {
        const m = await Promise.all([0, 1, 2].map(async (i) => /^Mode: (\S+)/m.exec(await flw(i, 'srvr'))?.[1]));
        const members = (await flw(0, 'conf')).split('\n').filter((l) => l.startsWith('server.'));
        return m.every((x) => x !== undefined) && members.length === 3 ? m : undefined;
      }, { timeoutMs: 150_000, intervalMs: 500 });
    expect(modes.filter((m) => m === 'leader')).toHaveLength(1);
    const conf = (await flw(1, 'conf')).split('\n').filter((l) => l.startsWith('server.')).sort();
    expect(conf).toEqual([0, 1, 2].map((i) => `server.${i + 1}=${ADDR[i]}:${12888 + i}:${13888 + i}:participant;${ADDR[i]}:${12181 + i}`));
    expect(await zkCli(1, 'create', '/across-hosts', 'from-h2')).toContain('Created /across-hosts');
    expect(await until('the znode read on h3', async () => ((await zkCli(2, 'get', '/across-hosts')).includes('from-h2') ? true : undefined), 30_000)).toBe(true);
  });

  it.concurrent('PostgreSQL replicas on other hosts stream from the primary over its real address', { timeout: 180_000 }, async ({ expect }) => {
    await startAgents('postgresql', PG_GOSSIP, { port: PG_PORT });
    // Which unit is primary is the peers' election; the replicas name its host in their primary_conninfo.
    const roles = await until('one primary and two streaming replicas', async () => {
        const r: string[] = [];
        for (let i = 0; i < 3; i++) {
          const conninfo = await readFile(join(dataDir('postgresql', i), 'unit', 'pg', 'data', 'postgresql.auto.conf'), 'utf8').catch(() => '');
          const standby = await access(join(dataDir('postgresql', i), 'unit', 'pg', 'data', 'standby.signal')).then(() => true, () => false);
          const ready = await access(join(dataDir('postgresql', i), 'unit', 'pg', 'data', 'PG_VERSION')).then(() => true, () => false);
          if (!ready) return undefined;
          r.push(standby ? `replica:${/host=(\S+)/.exec(conninfo)?.[1] ?? '?'}` : 'primary');
        }
        // While the election settles a replica may still name an earlier primary: wait for the settled
        // state (a replica that never follows the primary fails here, at the timeout).
        const primary = r.indexOf('primary');
        return r.filter((x) => x === 'primary').length === 1 && r.every((x, i) => i === primary || x === `replica:${ADDR[primary]}`) ? r : undefined;
      }, { timeoutMs: 150_000, intervalMs: 500 });
    const primary = roles.indexOf('primary');
    for (const r of roles.filter((x) => x !== 'primary')) expect(r).toBe(`replica:${ADDR[primary]}`);
    // Real rows, written on the primary's host and read on each replica's host, as the superuser over each host's private socket.
    const psqlOn = async (i: number, statement: string): Promise<string> => {
      const run = join(dataDir('postgresql', i), 'unit', 'pg', 'run');
      const r = await host(i).exec('psql', ['-h', run, '-p', String(PG_PORT + i), '-U', 'postgres', '-d', 'app', '-X', '-t', '-A', '-c', statement], { timeoutMs: 20_000 });
      return (r.stdout + r.stderr).trim();
    };
    expect(await psqlOn(primary, "CREATE TABLE t (v text); INSERT INTO t VALUES ('across-hosts')")).not.toMatch(/ERROR/);
    for (const i of [0, 1, 2].filter((n) => n !== primary)) {
      await until(`the row on h${i + 1}`, async () => ((await psqlOn(i, 'SELECT v FROM t')) === 'across-hosts' ? true : undefined), 30_000);
    }
  });
});
