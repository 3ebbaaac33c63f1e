/**
 * Rhizome across machines: five hosts (network namespaces on one bridge,
 * test/hosts/), one real agent process per host for four of them, every
 * agent bound to 0.0.0.0 and advertising its host's address, the keyring on.
 * The fifth host is an outsider on the same network without the key.
 *
 *   h1 10.231.1.1  namenode/0        h3 10.231.1.3  datanode/1
 *   h2 10.231.1.2  datanode/0        h4 10.231.1.4  datanode/2
 *   h5 10.231.1.5  the outsider
 *
 * The CLI always runs inside h1 and talks only to h1's agent (over its
 * loopback control API); everything about other hosts comes over the mesh.
 * Tests run in order and share the cluster; each waits for conditions,
 * bounded, never for fixed sleeps. Agents and the CLI run compiled
 * (`rhizomeCommand`: `pnpm build` first), no TypeScript tooling at run time.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Keyring } from '@rhizome/gossip';
import { rhizomeCommand } from '../packages/agent/src/runtime';
import { ROOT } from './e2e-support';
import { createHosts, netnsUnavailableReason, type Host, type HostNetwork, type HostProcess } from './hosts/index';
import { until } from '@rhizome/test-support';

const reason = await netnsUnavailableReason();
if (reason) console.warn(`skipping the multi-host tests: ${reason}`);

const PORT = 23400;
const ADDR = ['10.231.1.1', '10.231.1.2', '10.231.1.3', '10.231.1.4', '10.231.1.5'];
const UNITS = ['namenode/0', 'datanode/0', 'datanode/1', 'datanode/2'];
const LABEL = 'rhizome-mh';
const WORKERS = `${ADDR[1]}\n${ADDR[2]}\n${ADDR[3]}\n`;
const FS = `hdfs://${ADDR[0]}:8020`;

interface Cli {
  code: number;
  stdout: string;
  stderr: string;
}

describe.skipIf(reason !== undefined)(`multi-host: 4 agents on 4 hosts, keyring on${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let net: HostNetwork;
  let tmp = '';
  const agents = new Map<string, HostProcess>();
  const host = (i: number): Host => net.hosts[i - 1]!;
  const dataDir = (i: number): string => join(tmp, `h${i}`, UNITS[i - 1]!.replace('/', '-'));
  const unitFile = (i: number, f: string): Promise<string> => readFile(join(dataDir(i), 'unit', f), 'utf8').catch(() => '');
  const keyringFile = (i: number): string => join(tmp, `h${i}`, 'keyring');
  const charmDir = (name: string): string => join(ROOT, 'charms', name);
  /** `rhizome ARGS` as compiled JavaScript (the one helper every spawner uses; run `pnpm build` first). */
  const rz = (args: string[]): string[] => [...rhizomeCommand(args).args];

  /** `rhizome ...` inside host i (default h1), against that host's agent. */
  async function cli(args: string[], i = 1, env: Record<string, string> = {}): Promise<Cli> {
    const r = await host(i).exec('env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, ...rz(args)], { timeoutMs: 60_000 });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  }
  const cliAt = (args: string[], i = 1): Promise<Cli> => cli(['--data-dir', dataDir(i), ...args], i);
  async function json<T>(args: string[], i = 1): Promise<T> {
    const r = await cliAt(args, i);
    if (r.code !== 0) throw new Error(`rhizome ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout) as T;
  }
  /**
   * GET a control route of host i's agent from inside host i (its API is on
   * that host's loopback only). Plain node, no CLI start-up: for the polls;
   * the CLI itself is exercised where the test is about the CLI.
   */
  async function api<T>(i: number, path: string): Promise<T> {
    const script = `const fs=require('fs'),p=require('path'),d=process.argv[1];const {url}=JSON.parse(fs.readFileSync(p.join(d,'control.json'),'utf8'));const t=fs.readFileSync(p.join(d,'control.token'),'utf8').trim();fetch(url+process.argv[2],{headers:{authorization:'Bearer '+t},signal:AbortSignal.timeout(10000)}).then(async r=>{process.stdout.write(await r.text());process.exit(r.ok?0:1)},e=>{console.error(String(e));process.exit(1)})`;
    const r = await host(i).exec(process.execPath, ['-e', script, dataDir(i), path], { timeoutMs: 15_000 });
    if (r.code !== 0) throw new Error(`GET ${path} on h${i}: ${r.stderr.trim() || r.stdout.trim()}`);
    return JSON.parse(r.stdout) as T;
  }
  const membersSeenBy = (i: number): Promise<{ name: string; status: string; address: string }[]> => api(i, '/members');
  const aliveSeenBy = async (i: number): Promise<string[]> => (await membersSeenBy(i)).filter((m) => m.status === 'alive').map((m) => m.name).sort();

  async function startAgent(i: number, extra: Record<string, unknown> = {}): Promise<void> {
    const unit = UNITS[i - 1]!;
    const charm = unit.startsWith('namenode') ? 'hadoop-namenode' : 'hadoop-datanode';
    const file = join(tmp, `h${i}`, 'agent.json'); // JSON is YAML: the agent reads either
    await writeFile(
      file,
      JSON.stringify({
        unit,
        charmDir: charmDir(charm),
        dataDir: dataDir(i),
        bind: `0.0.0.0:${PORT}`,
        // Host 4 names no advertise address: a wildcard bind advertises the host's first non-loopback one.
        ...(i === 4 ? {} : { advertise: ADDR[i - 1] }),
        keyringFile: keyringFile(i),
        label: LABEL,
        seeds: i === 1 ? [] : [`${ADDR[0]}:${PORT}`],
        ...(charm === 'hadoop-namenode' ? { options: { clustername: 'mh' } } : {}),
        ...extra,
      }),
      { mode: 0o600 },
    );
    await rm(join(dataDir(i), 'control.json'), { force: true });
    agents.set(unit, host(i).spawn(process.execPath, rz(['agent', '--config', file, '--no-fsync'])));
  }

  async function converged(what: string, timeoutMs = 60_000): Promise<void> {
    await until(what, async () => {
        if ((await unitFile(1, 'workers')) !== WORKERS) return undefined;
        for (const i of [2, 3, 4]) if (!(await unitFile(i, 'core-site.xml')).includes(`<value>${FS}</value>`)) return undefined;
        return true;
      }, { timeoutMs: timeoutMs, intervalMs: 200 });
  }

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'rhizome-mh-'));
    net = await createHosts({ prefix: 'mh-m', addresses: ADDR });
    // The attack fixture is a test script, not Rhizome code: bundled once so it starts fast.
    const esbuild = await import('esbuild');
    await esbuild.build({
      entryPoints: [join(ROOT, 'test/hosts/fixtures/outsider.ts')],
      outfile: join(tmp, 'outsider.mjs'),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external: ['msgpackr-extract', 'bufferutil', 'utf-8-validate'],
      banner: { js: "import { createRequire as __rq } from 'node:module'; const require = __rq(import.meta.url);" },
      logLevel: 'silent',
    });
    const key = Keyring.generateKey();
    for (let i = 1; i <= 4; i++) {
      await mkdir(join(tmp, `h${i}`), { recursive: true });
      await writeFile(keyringFile(i), `${key}\n`, { mode: 0o600 });
    }
    await Promise.all([1, 2, 3, 4].map((i) => startAgent(i)));
    await until('every agent serving', async () => {
      for (let i = 1; i <= 4; i++) {
        if (!(await readFile(join(dataDir(i), 'control.json'), 'utf8').catch(() => ''))) {
          const p = agents.get(UNITS[i - 1]!)!;
          if (p.child.exitCode !== null) throw new Error(`agent ${UNITS[i - 1]} exited: ${p.output().slice(-2000)}`);
          return undefined;
        }
      }
      return true;
    }, { timeoutMs: 60_000, intervalMs: 200 });
  }, 120_000);

  afterAll(async () => {
    // All at once: each stop waits for its own agent, up to 5 s.
    await Promise.all([...agents.values()].map((p) => p.stop('SIGTERM', 5_000).catch(() => undefined)));
    await net?.cleanup();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }, 60_000);

  it('the Hadoop example converges across hosts with the hosts\' real addresses', async () => {
    const started = Date.now();
    await until('relate accepted', async () => ((await cliAt(['relate', 'datanode:namenode', 'namenode:datanode'])).code === 0 ? true : undefined), { timeoutMs: 30_000, intervalMs: 300 });
    await converged('workers and core-site.xml with real addresses');
    console.log(`multi-host: Hadoop converged ${Date.now() - started} ms after relate`);
    expect(await unitFile(1, 'workers')).toBe(WORKERS);
    const hdfs = await unitFile(3, 'hdfs-site.xml');
    expect(hdfs).toContain(`<value>${ADDR[2]}</value>`); // dfs.datanode.hostname
    expect(await unitFile(1, 'core-site.xml')).toContain(`<value>${FS}</value>`);
    // Gossip advertises the hosts' addresses, never the wildcard (host 4 chose its own and said so).
    const members = await membersSeenBy(1);
    expect(members.map((m) => m.address).sort()).toEqual(ADDR.slice(0, 4).map((a) => `${a}:${PORT}`));
    expect(await readFile(join(dataDir(4), 'agent.log'), 'utf8')).toMatch(/advertising the first non-loopback address: 10\.231\.1\.4 \(interface eth0\)/);
  });

  it('status on host 1 lists all 4 units with their workload status; with no deployment the local agent is found', async () => {
    const s = await json<{ units: { unit: string; workload: string; message: string; address: string }[] }>(['status', '--format', 'json']);
    expect(s.units.map((u) => u.unit).sort()).toEqual([...UNITS].sort());
    for (const u of s.units) expect(u.workload, `${u.unit}: ${u.message}`).toBe('active');
    expect(s.units.find((u) => u.unit === 'datanode/2')?.message).toContain(ADDR[3]);
    // No --data-dir, no deployment.json on this host: the agent under the home answers for the cluster.
    const bare = await cli(['status', '--format', 'json'], 1, { RHIZOME_HOME: join(tmp, 'h1') });
    expect(bare.code, bare.stderr).toBe(0);
    expect((JSON.parse(bare.stdout) as { units: unknown[] }).units).toHaveLength(4);
  });

  it('facts, runs and resolve of a unit on host 3 work from host 1, over the mesh', async () => {
    const [facts, runs, resolve, unknown, logs] = await Promise.all([
      json<Record<string, unknown>>(['--json', 'facts', 'datanode/1']),
      json<{ eventLabel: string }[]>(['--json', 'runs', 'datanode/1']),
      cliAt(['resolve', 'datanode/1']),
      cliAt(['facts', 'datanode/9']),
      cliAt(['--json', 'logs', 'datanode/1', '-n', '5']),
    ]);
    expect(logs.code, logs.stderr).toBe(0);
    const lines = logs.stdout.trim().split('\n').map((l) => JSON.parse(l) as { unit?: string });
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l) => l.unit === 'datanode/1')).toBe(true);
    expect(facts['hdfs.namenode']).toBe(FS);
    expect(facts['config']).toMatchObject({ hostname: '' }); // datanode/1's own charm config, from host 3
    expect(runs.length).toBeGreaterThan(0);
    // datanode/1 is not in error: its own engine refuses, and the refusal comes back from host 3.
    expect(resolve.code).toBe(1);
    expect(resolve.stderr).toMatch(/datanode\/1: /);
    // An unknown unit is named as such, not a timeout.
    expect(unknown.stderr).toMatch(/not in the mesh/);
  });

  it('a host whose link goes down is departed, and comes back', async () => {
    await net.linkDown(host(4));
    try {
      const t0 = Date.now();
      await until('datanode/2 departed from workers', async () => ((await unitFile(1, 'workers')) === `${ADDR[1]}\n${ADDR[2]}\n` ? true : undefined), { timeoutMs: 45_000, intervalMs: 200 });
      console.log(`multi-host: link down -> departed in ${Date.now() - t0} ms`);
      const s = await api<{ units: { unit: string; up: boolean; error?: string }[] }>(1, '/cluster/status?timeoutMs=2000');
      expect(s.units.find((u) => u.unit === 'datanode/2')).toMatchObject({ up: false });
    } finally {
      await net.linkUp(host(4));
    }
    const t1 = Date.now();
    await converged('datanode/2 back in workers');
    console.log(`multi-host: link up -> back in ${Date.now() - t1} ms`);
  }, 150_000);

  it('a 2/2 partition (iptables DROP) heals and converges', async () => {
    const p0 = Date.now();
    await net.partition([host(1), host(2)], [host(3), host(4)]);
    try {
      // Each side stops counting the other as alive (suspect, then failed). How long `failed`
      // takes is the gossip layer's: Lifeguard stretches the suspicion of a member by the
      // accuser's own local health, which a partition degrades (up to 8 x 24 s on the LAN
      // profile), so the test does not wait for it.
      await until('each side sees the other as not alive', async () => ((await aliveSeenBy(1)).join() === 'datanode/0,namenode/0' && (await aliveSeenBy(3)).join() === 'datanode/1,datanode/2' ? true : undefined), { timeoutMs: 45_000, intervalMs: 300 });
      console.log(`multi-host: partition -> each side alone in ${Date.now() - p0} ms`);
      // Status from host 1 still answers, for the units it can reach; the others are listed as down.
      const st = await api<{ units: { unit: string; up: boolean }[] }>(1, '/cluster/status?timeoutMs=1500');
      expect(st.units.map((u) => `${u.unit}:${u.up}`).sort()).toEqual(['datanode/0:true', 'datanode/1:false', 'datanode/2:false', 'namenode/0:true']);
    } finally {
      await net.heal();
    }
    const t0 = Date.now();
    await until('one cluster again', async () => ((await aliveSeenBy(3)).length === 4 && (await aliveSeenBy(1)).length === 4 ? true : undefined), { timeoutMs: 60_000, intervalMs: 300 });
    await converged('workers after the partition healed');
    console.log(`multi-host: partition healed and converged in ${Date.now() - t0} ms`);
  }, 150_000);

  it('an outsider without the key cannot join, nor inject a member, an event, a relation declaration or relation data', async () => {
    await converged('converged before the outsider');
    const outsider = host(5);
    const env = { OUTSIDER_TARGET: `${ADDR[0]}:${PORT}`, OUTSIDER_BIND: ADDR[4]!, OUTSIDER_PORT: '23450', OUTSIDER_ROUNDS: '5' };
    const script = join(tmp, 'outsider.mjs');
    const attack = async (extra: Record<string, string>): Promise<void> => {
      const r = await outsider.exec('env', [...Object.entries({ ...env, ...extra }).map(([k, v]) => `${k}=${v}`), process.execPath, script], { timeoutMs: 30_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toMatchObject({ sent: expect.any(Number) });
    };
    // Plaintext, a wrong key, and the right key with a wrong label.
    await attack({});
    await attack({ OUTSIDER_KEY: Keyring.generateKey(), OUTSIDER_LABEL: LABEL });
    await attack({ OUTSIDER_KEY: (await readFile(keyringFile(1), 'utf8')).trim(), OUTSIDER_LABEL: 'rhizome-other' });
    // And a real agent without the key tries to join as a datanode. Its
    // attempt's length is not what is tested (the cluster, on LAN timings,
    // refuses it): `--profile local` gives up a refused join after 3 s, not
    // the LAN profile's 10, so its 'join failed' comes sooner.
    const dir = join(tmp, 'h5', 'datanode-9');
    await mkdir(dir, { recursive: true });
    const intruder = outsider.spawn(process.execPath, rz([
      '--data-dir', dir, 'agent', '--unit', 'datanode/9', '--charm', charmDir('hadoop-datanode'),
      '--bind', `0.0.0.0:${PORT}`, '--advertise', ADDR[4]!, '--insecure', '--seed', `${ADDR[0]}:${PORT}`, '--no-fsync', '--profile', 'local',
    ]));
    try {
      // Its join is refused: it keeps retrying and logs so.
      await until('the intruder tried and failed to join', async () => (/join failed/.test(await readFile(join(dir, 'agent.log'), 'utf8').catch(() => '')) ? true : undefined), { timeoutMs: 30_000, intervalMs: 300 });
      // Each attempt had no effect:
      const members = await membersSeenBy(1);
      expect(members.map((m) => m.name).sort()).toEqual([...UNITS].sort()); // no evil/0, no datanode/9
      expect(members.every((m) => m.status === 'alive')).toBe(true);
      const runs = await api<{ eventLabel: string }[]>(1, '/runs');
      expect(runs.map((r) => r.eventLabel).join(' ')).not.toMatch(/pwn/); // no user event ran
      expect(await unitFile(1, 'workers')).toBe(WORKERS); // the relation was not removed (a tombstone would empty it)
      for (const i of [2, 3, 4]) expect(await unitFile(i, 'core-site.xml')).not.toContain('evil.example'); // no injected data
      // The namenode logged the refused frames with the outsider's address.
      const log = await readFile(join(dataDir(1), 'agent.log'), 'utf8');
      expect(log).toMatch(/10\.231\.1\.5/);
    } finally {
      await intruder.stop('SIGTERM', 5_000);
    }
  });

  it('key rotation on the live cluster loses no member, and every agent persists the new keyring', async () => {
    await converged('converged before the rotation');
    const oldKey = (await readFile(keyringFile(1), 'utf8')).trim();
    const newKey = Keyring.generateKey();
    const install = await cliAt(['keys', 'install', newKey]);
    expect(install.code, install.stderr + install.stdout).toBe(0);
    expect(install.stdout).toMatch(/4\/4 member\(s\) acknowledged/);
    expect((await cliAt(['keys', 'use', newKey])).code).toBe(0);
    const remove = await cliAt(['keys', 'remove', oldKey]);
    expect(remove.code, remove.stderr + remove.stdout).toBe(0);
    const list = await json<{ keys: Record<string, number>; members: number }>(['--json', 'keys', 'list']);
    expect(list.keys).toEqual({ [newKey]: 4 });
    for (let i = 1; i <= 4; i++) expect((await readFile(keyringFile(i), 'utf8')).trim()).toBe(newKey);
    // Still one cluster, still converged, a while after the old key is gone.
    await until('all alive after rotation', async () => ((await aliveSeenBy(4)).length === 4 ? true : undefined), { timeoutMs: 10_000, intervalMs: 300 });
    expect(await aliveSeenBy(1)).toEqual([...UNITS].sort());
    await converged('converged after rotation', 20_000);
  });

  it('positive control: the same attack frames with the cluster\'s key and label are accepted', async () => {
    // So the refusals above are the keyring's and the label's doing, not malformed frames.
    const key = (await readFile(keyringFile(1), 'utf8')).trim();
    const env = { OUTSIDER_TARGET: `${ADDR[0]}:${PORT}`, OUTSIDER_BIND: ADDR[4]!, OUTSIDER_PORT: '23451', OUTSIDER_ROUNDS: '2', OUTSIDER_ATTACKS: 'member,event', OUTSIDER_KEY: key, OUTSIDER_LABEL: LABEL, OUTSIDER_LT: '200000' };
    const r = await host(5).exec('env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, join(tmp, 'outsider.mjs')], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    await until('the injected member and event took effect', async () => {
      const members = (await membersSeenBy(1)).map((m) => m.name);
      const runs = (await api<{ eventLabel: string }[]>(1, '/runs')).map((x) => x.eventLabel).join(' ');
      return members.includes('evil/0') && /pwn/.test(runs) ? true : undefined;
    }, { timeoutMs: 20_000, intervalMs: 300 });
  });

  it('an agent with the key but another label never merges with the cluster', async () => {
    const dir = join(tmp, 'h5', 'datanode-8');
    await mkdir(dir, { recursive: true });
    const other = join(tmp, 'h5', 'keyring');
    await writeFile(other, await readFile(keyringFile(1), 'utf8'), { mode: 0o600 });
    const stranger = host(5).spawn(process.execPath, rz([
      '--data-dir', dir, 'agent', '--unit', 'datanode/8', '--charm', charmDir('hadoop-datanode'),
      // --profile local: a refused join gives up after 3 s (see the intruder above).
      '--bind', `0.0.0.0:${PORT + 1}`, '--advertise', ADDR[4]!, '--keyring', other, '--label', 'rhizome-other', '--seed', `${ADDR[0]}:${PORT}`, '--no-fsync', '--profile', 'local',
    ]));
    try {
      await until('the stranger tried to join', async () => (/join failed/.test(await readFile(join(dir, 'agent.log'), 'utf8').catch(() => '')) ? true : undefined), { timeoutMs: 30_000, intervalMs: 300 });
      expect((await membersSeenBy(1)).map((m) => m.name).filter((n) => n !== 'evil/0').sort()).toEqual([...UNITS].sort());
      expect(await unitFile(1, 'workers')).toBe(WORKERS);
    } finally {
      await stranger.stop('SIGTERM', 5_000);
    }
  });
});
