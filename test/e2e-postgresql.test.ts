/**
 * examples/postgresql/bundle.yaml end to end: real agents running real
 * PostgreSQL servers (Debian's package). Checked with real data: the client
 * unit receives the primary's address and generated credentials over the
 * pgsql relation; a row written on the primary is read on both replicas;
 * a replica's unit is killed (agent and server) and the primary keeps
 * serving; the replica, started again, catches up; a new unit streams from
 * the primary; the password never reaches a log; `destroy` leaves no
 * postgres process.
 */
import { execFile } from 'node:child_process';
import { access, mkdtemp, readFile, readdir, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUnit, deploy, destroy, killUnit, startUnit } from '@rhizome/agent';
import { converge, ROOT, unitDir, unitStatus, writeBundle } from './e2e-support';
import { until } from '@rhizome/test-support';

const NAME = 'postgresql';
const PORT = 16432; // a base other than the example's: unit N listens on PORT + N
const pgInstalled = await readdir('/usr/lib/postgresql').then(
  (v) => v.length > 0,
  () => false,
);
let home = '';

interface Connection {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

/** One statement through psql over TCP with the client's credentials; stdout, or the error text. */
function psql(conn: Connection, port: number, statement: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(
      'psql',
      ['-h', '127.0.0.1', '-p', String(port), '-U', conn.user, '-d', conn.database, '-X', '-t', '-A', '-w', '-c', statement],
      { env: { ...process.env, PGPASSWORD: conn.password, PGCONNECT_TIMEOUT: '5' }, timeout: 20_000 },
      (err, stdout, stderr) => resolve(err ? `ERROR ${stderr}` : stdout.trim()),
    );
  });
}

/** Pids of this test's postmasters (their command line names one of this deployment's clusters). */
async function ourPostmasters(): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
    if (/\/postgres -D /.test(cmdline) && clusters().some((c) => cmdline.includes(c))) out.push(Number(entry));
  }
  return out;
}
/** Each unit's cluster: the charm links it from the unit's dir as `pg` (remembered, since destroy removes the link). */
const known = new Set<string>();
async function clusterOf(unit: string): Promise<string | undefined> {
  const root = await realpath(join(unitDir(home, NAME, unit), 'pg')).catch(() => undefined);
  if (root !== undefined) known.add(root);
  return root;
}
const clusters = (): string[] => [...known];
const postmasterPid = async (unit: string): Promise<number> => Number((await readFile(join((await clusterOf(unit))!, 'data', 'postmaster.pid'), 'utf8')).split('\n')[0]);

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'rhizome-e2e-pg-'));
  const example = await readFile(join(ROOT, 'examples/postgresql/bundle.yaml'), 'utf8');
  await writeBundle(home, example.replace(/charm: \.\.\/\.\.\/charms\//g, 'charm: charms/').replace('    units: 3\n', `    units: 3\n    options: { port: ${PORT} }\n`));
});
afterAll(async () => {
  await destroy(home, { deployment: NAME, keep: true }).catch(() => undefined);
  for (const pid of await ourPostmasters()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const c of clusters()) await rm(c, { recursive: true, force: true });
  await rm(home, { recursive: true, force: true });
}, 60_000);

describe.skipIf(!pgInstalled)('the postgresql bundle on real agents and real servers', () => {
  it('replicates real rows, survives a replica loss, grows, and leaves nothing behind', { timeout: 300_000 }, async () => {
    await deploy(join(home, 'bundle.yaml'), { home, timeoutMs: 180_000, noFsync: true });

    // The client got the primary's address and the generated credentials over the relation.
    await until('the client connected', async () => ((await unitStatus(home, NAME, 'client/0')).workload?.message?.startsWith('connected') ? true : undefined), 60_000);
    const conn = JSON.parse(await readFile(join(unitDir(home, NAME, 'client/0'), 'connection.json'), 'utf8')) as Connection;
    // Leader election decides the primary (usually postgresql/0; two units starting at once may settle on another).
    expect(conn).toMatchObject({ host: '127.0.0.1', database: 'app', user: 'app' });
    const primary = conn.port - PORT;
    expect([0, 1, 2]).toContain(primary);
    const [r1, r2] = [0, 1, 2].filter((n) => n !== primary) as [number, number];
    expect(conn.password.length).toBeGreaterThanOrEqual(24);
    expect((await unitStatus(home, NAME, 'client/0')).workload?.message).toMatch(new RegExp(`^connected to app on 127\\.0\\.0\\.1:${conn.port} as app`));
    expect(await psql({ ...conn, password: 'wrong-password-123456' }, conn.port, 'SELECT 1')).toMatch(/password authentication failed/);

    expect(await psql(conn, conn.port, 'CREATE TABLE notes (v text); INSERT INTO notes VALUES (\'row-1\');')).not.toMatch(/ERROR/);
    const readOn = (port: number, want: string) => until(`${want} on port ${port}`, async () => ((await psql(conn, port, 'SELECT string_agg(v, \',\' ORDER BY v) FROM notes')) === want ? true : undefined), 30_000);
    await readOn(PORT + r1, 'row-1');
    await readOn(PORT + r2, 'row-1');
    // Replicas are read-only.
    expect(await psql(conn, PORT + r1, "INSERT INTO notes VALUES ('nope')")).toMatch(/read-only transaction/);
    await until('status to show 2 streaming replicas', async () => ((await unitStatus(home, NAME, `postgresql/${primary}`)).workload?.message?.includes('2 replica(s) streaming') ? true : undefined), 60_000);

    // A replica's unit dies, agent and server: the primary keeps serving.
    const replicaPid = await postmasterPid(`postgresql/${r2}`);
    await killUnit(home, `postgresql/${r2}`, { deployment: NAME });
    process.kill(replicaPid, 'SIGKILL');
    expect(await psql(conn, conn.port, "INSERT INTO notes VALUES ('row-2')")).not.toMatch(/ERROR/);
    await readOn(PORT + r1, 'row-1,row-2');
    // Started again, it catches up.
    await startUnit(home, `postgresql/${r2}`, { deployment: NAME, noFsync: true });
    await converge(home, NAME, 120_000);
    await readOn(PORT + r2, 'row-1,row-2');

    // A new unit is a new replica: a base backup, then it streams.
    await addUnit(home, 'postgresql', { deployment: NAME, noFsync: true });
    await converge(home, NAME, 120_000);
    await readOn(PORT + 3, 'row-1,row-2');
    expect(await psql(conn, conn.port, "INSERT INTO notes VALUES ('row-3')")).not.toMatch(/ERROR/);
    await readOn(PORT + 3, 'row-1,row-2,row-3');
    expect((await unitStatus(home, NAME, 'postgresql/3')).workload?.message).toMatch(new RegExp(`^replica of postgresql/${primary} .* streaming, replay lag \\d+ bytes$`));

    // The password never reached a log.
    for (const unit of ['postgresql/0', 'postgresql/1', 'postgresql/2', 'postgresql/3', 'client/0']) {
      const dir = join(unitDir(home, NAME, unit), '..');
      for (const f of ['agent.log', 'agent.out']) {
        const text = await readFile(join(dir, f), 'utf8').catch(() => '');
        expect(text.includes(conn.password), `${unit} ${f}`).toBe(false);
      }
    }

    for (const n of [0, 1, 2, 3]) expect(await clusterOf(`postgresql/${n}`)).toBeDefined();
    expect((await ourPostmasters()).length).toBe(4);
    await destroy(home, { deployment: NAME, keep: true });
    expect(await ourPostmasters()).toEqual([]);
    // --keep keeps the clusters with the record; destroying for good removes them (the charm declares them as workload data).
    for (const c of clusters()) await expect(access(join(c, 'data', 'PG_VERSION'))).resolves.toBeUndefined();
    const gone = await destroy(home, { deployment: NAME });
    expect(gone.workloads.filter((w) => w.outcome === 'data-removed')).toHaveLength(clusters().length);
    for (const c of clusters()) await expect(access(c)).rejects.toThrow(/ENOENT/);
  });
});
