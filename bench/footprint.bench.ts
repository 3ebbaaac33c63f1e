/**
 * `pnpm bench -- footprint`: start-up and footprint of the compiled agent and
 * CLI, side by side with Serf in the same run (issue 11's targets):
 *
 *   status_ms        `rhizome status` (a new process running the package's
 *                    bin, bin/rhizome.cjs, as `rhizome` on the PATH does)
 *                    against a running 4-unit deployment (examples/hadoop),
 *                    median of 10; Serf: `serf members` against a 4-agent
 *                    Serf cluster. Target <= 100 ms.
 *   start_member_ms  agent process start -> listed alive by the seed's
 *                    member list (a datanode joining the namenode, polled
 *                    over the control API every 10 ms), median of 5; Serf: a
 *                    `serf agent -join` listed alive by the seed. Target <= 300 ms.
 *   rss_mb           resident memory of a hadoop-datanode agent 10 s after
 *                    convergence, measured before the start -> member runs
 *                    (target <= 60 MB; bare `node -e` alongside), and of a
 *                    gossip-only node beside a Serf agent.
 *   kv_by_hand       a kv agent (the trial's charm, a test fixture) started
 *                    by hand, `rhizome agent --charm DIR` with no compiled
 *                    module (it compiles at start): its RSS 10 s after it
 *                    serves, split by /proc/PID/smaps into the `node`
 *                    binary and other files (code), malloc's brk heap and
 *                    the other anonymous memory (mostly V8's heap), plus the
 *                    RSS of any process it left running beside it.
 *
 * Beside each wall time, the CPU time (user + system) the measured process
 * spent: on a machine other work keeps busy, wall times inflate while CPU
 * times hardly move (status: the CLI processes' own CPU, from this process's
 * reaped-children counters; start -> member: the agent's CPU when it was
 * first listed alive). `before` holds the figures this bench gave when the
 * issue 11 start-up work began, for comparison.
 *
 * Writes bench/results/footprint.json. Needs `pnpm build` (agents and the
 * CLI run compiled) and `serf` (Serf columns are null without it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Table from 'cli-table3';
import { clientFor, deploy, destroy, type Deployment } from '../packages/agent/src/index';
import { agentCommand } from '../packages/agent/src/cli';
import { deploymentLabel } from '../packages/agent/src/deploy/deployment';
import { deploymentKeyringFile } from '../packages/agent/src/deploy/keyring-sync';
import { freePorts, RhizomeCluster } from './gossip/clusters';

const ROOT = join(import.meta.dirname, '..');
/** The `rhizome` command as installed: the agent package's bin (package.json). */
const RHIZOME_BIN = join(ROOT, 'packages/agent/bin/rhizome.cjs');
/** The kv charm of an operator's trial (a test fixture), started by hand below. */
const KV_CHARM = join(ROOT, 'packages/agent/test/fixtures/charms/kv');
const RUNS_STATUS = 10;
/**
 * This bench's figures when the issue 11 start-up work began (commit
 * d888fa0): quiet machine, and a run at load average ~8 (with CPU times
 * measured by hand: perf stat task-clock for status, /proc for the agent).
 */
const BEFORE = {
  commit: 'd888fa0',
  quiet: { status_ms: 136, start_member_ms: 453, datanode_agent_rss_mb: 76, gossip_only_rss_mb: 58 },
  loaded: { load_average_1m: 8, status_ms: 391.6, status_cpu_ms: 125, start_member_ms: 1929.4, start_member_cpu_ms: 460, datanode_agent_rss_mb: 75.6, gossip_only_rss_mb: 58.3 },
};
/**
 * This bench's figures at ee2e0d3 (README, at load 2), before the quick
 * CLI, the lazy loading and the minified bundles that took status and the
 * datanode agent under issue 11's targets.
 */
const PREVIOUS = {
  commit: 'ee2e0d3',
  load_average_1m: 2,
  status_ms: 111,
  status_cpu_ms: 110,
  start_member_ms: 281,
  start_member_cpu_ms: 260,
  datanode_agent_rss_mb: 65,
  gossip_only_rss_mb: 58,
};
const RUNS_START = 5;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
};
const round = (x: number | null, d = 1): number | null => (x === null ? null : Math.round(x * 10 ** d) / 10 ** d);

function rssMb(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** CPU time (user + system, ms) of a live process, or of this process's reaped children with `'children'`. */
function cpuMs(pid: number | 'children'): number | null {
  try {
    const f = readFileSync(`/proc/${pid === 'children' ? 'self' : pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // Fields 14-17 of stat (utime, stime, cutime, cstime), in clock ticks (100 per second on Linux).
    const [user, sys] = pid === 'children' ? [f[13], f[14]] : [f[11], f[12]];
    return (Number(user) + Number(sys)) * 10;
  } catch {
    return null;
  }
}

/** Wall times of `runs` runs, and the mean CPU time of one (the children's counters have 10 ms ticks; a mean over the runs is finer). */
function timeCommand(cmd: string, args: string[], runs: number): number[] & { cpuMs?: number | null } {
  const out: number[] & { cpuMs?: number | null } = [];
  spawnSync(cmd, args, { stdio: 'ignore' }); // warm the page cache once
  const cpu0 = cpuMs('children');
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
    const ms = performance.now() - t;
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
    out.push(ms);
  }
  const cpu1 = cpuMs('children');
  out.cpuMs = cpu0 === null || cpu1 === null ? null : (cpu1 - cpu0) / runs;
  return out;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, everyMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

async function stopChild(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGKILL');
  await Promise.race([exited, sleep(5_000)]);
}

// --- Rhizome ------------------------------------------------------------------

async function rhizomeSide(tmp: string) {
  const home = join(tmp, 'home');
  const res = await deploy(join(ROOT, 'examples/hadoop/bundle.yaml'), { home, noFsync: true, timeoutMs: 120_000 });
  const d: Deployment = res.deployment;
  const convergedAt = Date.now();
  try {
    const status = timeCommand(process.execPath, [RHIZOME_BIN, '--home', home, 'status'], RUNS_STATUS);
    // The floor under it at this moment's load: a node process that does nothing.
    const bareNode = timeCommand(process.execPath, ['-e', '0'], RUNS_STATUS);

    // Resident memory 10 s after convergence, before the start -> member runs below join and
    // leave the mesh (each makes every agent work, and would be measured instead).
    await sleep(Math.max(0, convergedAt + 10_000 - Date.now()));
    const datanodeRss = median(Object.values(d.units).filter((u) => u.service === 'datanode').map((u) => rssMb(u.pid)).filter((x): x is number => x !== null));
    const namenodeRss = rssMb(d.units['namenode/0']!.pid);

    // Start -> member: one more datanode joining the namenode, from the datanode's own agent.yaml.
    const namenode = d.units['namenode/0']!;
    const nn = await clientFor(namenode);
    const datanode = d.units['datanode/0']!;
    // What deploy writes to agent.yaml, for one more unit (JSON is YAML).
    const template = { charmDir: datanode.charmDir, charmModule: datanode.charmModule, keyringFile: deploymentKeyringFile(d), label: deploymentLabel(d), logLevel: 'warn' };
    const starts: number[] = [];
    const startCpus: number[] = [];
    for (let i = 0; i < RUNS_START; i++) {
      const unit = `datanode/${50 + i}`;
      const dataDir = join(tmp, `extra-${i}`);
      const file = join(tmp, `extra-${i}.yaml`);
      await writeFile(file, JSON.stringify({ ...template, unit, dataDir, seeds: [namenode.gossipAddress] }), { mode: 0o600 });
      const cmd = agentCommand(file, ['--no-fsync']);
      const t = performance.now();
      const child = spawn(cmd.command, [...cmd.args], { stdio: 'ignore' });
      try {
        await until(`${unit} alive at the namenode`, async () => {
          const members = (await nn.json('GET', '/members')) as { name: string; status: string }[];
          return members.some((m) => m.name === unit && m.status === 'alive') ? true : undefined;
        }, 30_000);
        starts.push(performance.now() - t);
        const c = child.pid === undefined ? null : cpuMs(child.pid);
        if (c !== null) startCpus.push(c);
      } finally {
        child.kill('SIGTERM');
        await Promise.race([new Promise((r) => child.once('exit', r)), sleep(10_000)]);
        await stopChild(child);
      }
    }

    return { status, bareNode, starts, startCpus, datanodeRss, namenodeRss };
  } finally {
    await destroy(home, { deployment: d.name });
  }
}

/** Resident kB of a process by kind of mapping, from /proc/PID/smaps. */
function smapsBreakdown(pid: number): { rssKb: number; nodeBinaryKb: number; otherFilesKb: number; mallocHeapKb: number; otherAnonKb: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return null;
  }
  const r = { rssKb: 0, nodeBinaryKb: 0, otherFilesKb: 0, mallocHeapKb: 0, otherAnonKb: 0 };
  let kind: keyof typeof r = 'otherAnonKb';
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head) {
      const [, inode, path] = head;
      kind = path === process.execPath ? 'nodeBinaryKb' : path === '[heap]' ? 'mallocHeapKb' : inode !== '0' ? 'otherFilesKb' : 'otherAnonKb';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) {
      r[kind] += Number(rss[1]);
      r.rssKb += Number(rss[1]);
    }
  }
  return r;
}

/** Resident MB of every descendant of `pid` (what it left running beside it). */
function descendantsRssMb(pid: number): number {
  let total = 0;
  let children: number[] = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) children.push(...readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
  } catch {
    children = [];
  }
  for (const c of children) total += (rssMb(c) ?? 0) + descendantsRssMb(c);
  return total;
}

/** The kv fixture charm's agent started by hand, as an operator does (`rhizome agent --charm`, compiled at start). */
async function kvByHand(tmp: string) {
  const dataDir = join(tmp, 'kv-by-hand');
  const env = { ...process.env, RHIZOME_CHARM_CACHE: join(tmp, 'kv-charm-cache') };
  const child = spawn(process.execPath, [RHIZOME_BIN, '--data-dir', dataDir, 'agent', '--unit', 'kv/0', '--charm', KV_CHARM, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'ignore'], env });
  try {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    await until('the kv agent to serve', async () => (/agent kv\/0 running/.test(out) ? true : undefined), 60_000, 50);
    await sleep(10_000);
    const pid = child.pid!;
    const kb = smapsBreakdown(pid);
    const mb = (x: number | undefined): number | null => round(x === undefined ? null : x / 1024);
    return { rssMb: mb(kb?.rssKb), nodeBinaryMb: mb(kb?.nodeBinaryKb), otherFilesMb: mb(kb?.otherFilesKb), mallocHeapMb: mb(kb?.mallocHeapKb), otherAnonMb: mb(kb?.otherAnonKb), besideMb: round(descendantsRssMb(pid)) };
  } finally {
    child.kill('SIGTERM');
    await Promise.race([new Promise((r) => child.once('exit', r)), sleep(10_000)]);
    await stopChild(child);
  }
}

async function gossipOnlyRss(): Promise<number | null> {
  const c = new RhizomeCluster(4, 'local');
  try {
    await c.start();
    await c.joinAll();
    await sleep(3_000);
    return median([0, 1, 2, 3].map((i) => rssMb(c.pid(i))).filter((x): x is number => x !== null));
  } finally {
    await c.stop();
  }
}

function bareNodeRss(): number | null {
  const r = spawnSync(process.execPath, ['-e', "setTimeout(() => { const m = /VmRSS:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8')); console.log(m[1]); }, 500)"], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) / 1024 : null;
}

// --- Serf -------------------------------------------------------------------

function hasSerf(): boolean {
  return spawnSync('serf', ['version'], { stdio: 'ignore' }).status === 0;
}

async function serfSide() {
  const ports = await freePorts(2 * (4 + RUNS_START));
  const agents: ChildProcess[] = [];
  const start = (i: number, join?: string): { proc: ChildProcess; rpc: string; bind: string } => {
    const bind = `127.0.0.1:${ports[2 * i]}`;
    const rpc = `127.0.0.1:${ports[2 * i + 1]}`;
    const proc = spawn('serf', ['agent', `-node=s${i}`, `-bind=${bind}`, `-rpc-addr=${rpc}`, '-profile=local', '-log-level=err', ...(join ? [`-join=${join}`] : [])], { stdio: 'ignore' });
    agents.push(proc);
    return { proc, rpc, bind };
  };
  const members = (rpc: string): { name: string; status: string }[] => {
    const r = spawnSync('serf', ['members', `-rpc-addr=${rpc}`, '-format=json'], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) return [];
    return (JSON.parse(r.stdout) as { members: { name: string; status: string }[] }).members;
  };
  try {
    const seed = start(0);
    await until('serf seed', async () => (members(seed.rpc).length > 0 ? true : undefined), 30_000, 50);
    for (let i = 1; i < 4; i++) start(i, seed.bind);
    await until('4 serf members', async () => (members(seed.rpc).filter((m) => m.status === 'alive').length === 4 ? true : undefined), 30_000, 50);
    const status = timeCommand('serf', ['members', `-rpc-addr=${seed.rpc}`], RUNS_STATUS);
    const starts: number[] = [];
    for (let i = 0; i < RUNS_START; i++) {
      const t = performance.now();
      const extra = start(4 + i, seed.bind);
      await until(`s${4 + i} alive`, async () => (members(seed.rpc).some((m) => m.name === `s${4 + i}` && m.status === 'alive') ? true : undefined), 30_000, 5);
      starts.push(performance.now() - t);
      await stopChild(extra.proc);
    }
    await sleep(3_000);
    const rss = median([0, 1, 2, 3].map((i) => rssMb(agents[i]?.pid)).filter((x): x is number => x !== null));
    return { status, starts, rss };
  } finally {
    await Promise.all(agents.map(stopChild));
  }
}

// --- main -------------------------------------------------------------------

const tmp = await mkdtemp(join(tmpdir(), 'rz-footprint-'));
try {
  const r = await rhizomeSide(tmp);
  const kv = await kvByHand(tmp);
  const gossipRss = await gossipOnlyRss();
  const bare = bareNodeRss();
  const s = hasSerf() ? await serfSide() : undefined;
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    // Wall times inflate with the machine's load; the CPU figures hardly move.
    load_average_1m: round(loadavg()[0] ?? null, 2),
    rhizome: {
      status_ms: round(median(r.status)),
      status_runs_ms: r.status.map((x) => round(x)),
      status_cpu_ms: round(r.status.cpuMs ?? null),
      // `node -e 0` right after, the same way: what status costs above starting Node.
      bare_node_ms: round(median(r.bareNode)),
      bare_node_cpu_ms: round(r.bareNode.cpuMs ?? null),
      start_member_ms: round(median(r.starts)),
      start_member_runs_ms: r.starts.map((x) => round(x)),
      start_member_cpu_ms: round(median(r.startCpus)),
      datanode_agent_rss_mb: round(r.datanodeRss),
      namenode_agent_rss_mb: round(r.namenodeRss),
      gossip_only_rss_mb: round(gossipRss),
      kv_by_hand: {
        rss_mb: kv.rssMb,
        node_binary_mb: kv.nodeBinaryMb,
        other_files_mb: kv.otherFilesMb,
        malloc_heap_mb: kv.mallocHeapMb,
        other_anonymous_mb: kv.otherAnonMb,
        // Processes it left running beside it: esbuild's service (~40 MB) before the charm compiled apart.
        beside_mb: kv.besideMb,
      },
    },
    serf: s ? { members_ms: round(median(s.status)), members_runs_ms: s.status.map((x) => round(x)), start_member_ms: round(median(s.starts)), agent_rss_mb: round(s.rss) } : null,
    bare_node_rss_mb: round(bare),
    // Set on some machines (CI sandboxes): every node process, agents and bare node alike, then
    // loads those certificates at start, ~1.8 MB resident each (the agents inherit the environment).
    node_extra_ca_certs: process.env['NODE_EXTRA_CA_CERTS'] !== undefined,
    targets: { status_ms: 100, start_member_ms: 300, datanode_agent_rss_mb: 60 },
    before: BEFORE,
    previous: PREVIOUS,
  };
  const table = new Table({ head: ['measure', 'Rhizome', 'Serf', 'target'] });
  table.push(
    ['CLI: status / serf members, median of 10 (ms)', String(result.rhizome.status_ms), String(result.serf?.members_ms ?? '-'), '<= 100'],
    ['  CPU of one status process (ms)', String(result.rhizome.status_cpu_ms), '', ''],
    ['  node -e 0 at the same load: wall / CPU (ms)', `${result.rhizome.bare_node_ms} / ${result.rhizome.bare_node_cpu_ms}`, '', ''],
    ['agent start -> member of the mesh, median of 5 (ms)', String(result.rhizome.start_member_ms), String(result.serf?.start_member_ms ?? '-'), '<= 300'],
    ['  CPU of the agent until then, median (ms)', String(result.rhizome.start_member_cpu_ms), '', ''],
    ['RSS: hadoop-datanode agent, 10 s after convergence (MB)', String(result.rhizome.datanode_agent_rss_mb), '-', '<= 60'],
    ['RSS: kv agent by hand (rhizome agent --charm), 10 s after start (MB)', `${result.rhizome.kv_by_hand.rss_mb} (+${result.rhizome.kv_by_hand.beside_mb} beside)`, '-', ''],
    ['  node binary / other files / malloc heap / other anon (MB)', `${result.rhizome.kv_by_hand.node_binary_mb} / ${result.rhizome.kv_by_hand.other_files_mb} / ${result.rhizome.kv_by_hand.malloc_heap_mb} / ${result.rhizome.kv_by_hand.other_anonymous_mb}`, '', ''],
    ['RSS: gossip-only node / Serf agent (MB)', String(result.rhizome.gossip_only_rss_mb), String(result.serf?.agent_rss_mb ?? '-'), ''],
    ['RSS: bare node (MB)', String(result.bare_node_rss_mb), '', ''],
  );
  console.log(table.toString());
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/footprint.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log('wrote bench/results/footprint.json');
} finally {
  await rm(tmp, { recursive: true, force: true });
}
