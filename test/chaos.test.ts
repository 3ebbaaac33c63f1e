/**
 * Chaos on the Hadoop bundle (issue 13): real agent processes on 127.0.0.1,
 * 1 namenode + 4 datanodes, then about 30 s of random operations drawn
 * from a seeded PRNG:
 *
 *   SIGKILL a datanode · stop one gracefully · start a killed/stopped one ·
 *   add-unit datanode · remove-unit a datanode · SIGKILL the namenode and
 *   start it again
 *
 * with random pauses between them, up to two at once on different units
 * (RHIZOME_CHAOS_PARALLEL); then the namenode is started if it is
 * down, and the deployment must converge within a bound, after which the
 * invariants must hold:
 *
 *   - the namenode's `workers` lists exactly the live datanodes, sorted, once each;
 *   - every live datanode's core-site.xml points at the namenode;
 *   - no unit is in error;
 *   - no duplicates: each unit's members and relation units are distinct.
 *
 * Two seeds per run, printed. Replay: RHIZOME_CHAOS_SEEDS=123,456 (the same
 * schedule of operations; process timing is the machine's, so a replay is
 * close, not identical). RHIZOME_CHAOS_MS sets the chaos duration. A seed
 * that fails goes into REGRESSION_SEEDS below once its bug is fixed.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, it, type ExpectStatic } from 'vitest';
import {
  addUnit,
  clientFor,
  deploy,
  destroy,
  killUnit,
  readDeployment,
  removeUnit,
  startUnit,
  stopUnit,
  unitOf,
  waitForConvergence,
  type LocalConvergence,
} from '@rhizome/agent';
import { seededRandom } from '@rhizome/gossip';
import { parseHadoopXml } from '../charms/kit/src/hadoop-xml';
import { naturalSort, unitLabel } from '../charms/kit/src/sort';
import { unitDir, until, writeBundle } from './e2e-support';

/** Seeds that once failed, replayed first (keep the list short: each costs about a minute). */
// 611117770: a namenode and a datanode restarted while the other was down each stayed alone (fixed by mesh/rejoin.ts).
const REGRESSION_SEEDS: readonly number[] = [611117770];

function seedsForThisRun(): number[] {
  const env = process.env['RHIZOME_CHAOS_SEEDS'];
  if (env !== undefined && env.trim() !== '') {
    return env.split(',').map((s) => {
      const n = Number(s.trim());
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`RHIZOME_CHAOS_SEEDS: '${s}' is not a non-negative integer`);
      return n;
    });
  }
  const fresh = (): number => Math.floor(Math.random() * 2 ** 31);
  return [...REGRESSION_SEEDS, fresh(), fresh()].slice(0, 2);
}

const CHAOS_MS = Number(process.env['RHIZOME_CHAOS_MS'] ?? 30_000);
/** After the chaos: convergence must come within this. */
const CONVERGE_MS = 90_000;
const MAX_DATANODES = 7;
const MAX_ACTIONS = 60;
/** Operations in flight at once (each on its own unit). */
const PARALLEL = Number(process.env['RHIZOME_CHAOS_PARALLEL'] ?? 2);
const NAME = 'chaos';
const FS = 'hdfs://127.0.0.1:8020';

const homes: string[] = [];
afterAll(async () => {
  for (const home of homes) {
    await destroy(home, { deployment: NAME }).catch(() => undefined);
    await rm(home, { recursive: true, force: true });
  }
}, 60_000);

type UnitState = 'running' | 'killed' | 'stopped';

interface Step {
  readonly atMs: number;
  readonly action: string;
  readonly unit?: string;
  readonly outcome: string;
}

async function runChaos(seed: number, expect: ExpectStatic): Promise<void> {
  const home = await mkdtemp(join(tmpdir(), `rhizome-chaos-${seed}-`));
  homes.push(home);
  const bundle = await writeBundle(
    home,
    `name: ${NAME}
services:
  namenode:
    charm: charms/hadoop-namenode
    units: 1
    options:
      clustername: chaos
  datanode:
    charm: charms/hadoop-datanode
    units: 4
relations:
  - [datanode:namenode, namenode:datanode]
`,
  );
  const rand = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const log: Step[] = [];
  const t0 = Date.now();
  const say = (action: string, unit: string | undefined, outcome: string): void => {
    const step = { atMs: Date.now() - t0, action, ...(unit !== undefined ? { unit } : {}), outcome };
    log.push(step);
    process.stdout.write(`chaos seed ${seed} +${(step.atMs / 1000).toFixed(1)}s ${action}${unit ? ` ${unit}` : ''}: ${outcome}\n`);
  };
  const opts = { deployment: NAME, noFsync: true };

  try {
    await deploy(bundle, { home, timeoutMs: 120_000, noFsync: true });
    say('deploy', undefined, 'converged');

    // The model: what the schedule believes each unit is (drives the next choice).
    const units = new Map<string, UnitState>([['namenode/0', 'running']]);
    for (let i = 0; i < 4; i++) units.set(`datanode/${i}`, 'running');
    const datanodes = (...states: UnitState[]): string[] => [...units].filter(([u, s]) => u.startsWith('datanode/') && states.includes(s)).map(([u]) => u);

    // Up to PARALLEL operations at once, each on a unit no other one is touching
    // (a kill while another unit starts, an add-unit during a remove-unit...).
    const busy = new Set<string>();
    const inflight = new Set<Promise<void>>();
    const free = (xs: string[]): string[] => xs.filter((u) => !busy.has(u));
    const failures: unknown[] = [];
    const launch = (unit: string | undefined, op: () => Promise<void>): void => {
      if (unit !== undefined) busy.add(unit);
      const p: Promise<void> = op().catch((err: unknown) => {
        failures.push(err);
        say('operation on', unit, `FAILED: ${(err as Error).message}`);
      }).finally(() => {
        if (unit !== undefined) busy.delete(unit);
        inflight.delete(p);
      });
      inflight.add(p);
    };
    const chaosEnd = Date.now() + CHAOS_MS;
    for (let n = 0; n < MAX_ACTIONS && Date.now() < chaosEnd; n++) {
      const running = free(datanodes('running'));
      const down = free(datanodes('killed', 'stopped'));
      const any = free(datanodes('running', 'killed', 'stopped'));
      const choices: [string, number][] = [
        ['kill', running.length > 0 ? 3 : 0],
        ['stop', running.length > 0 ? 2 : 0],
        ['start', down.length > 0 ? 3 : 0],
        ['add', units.size - 1 + busy.size < MAX_DATANODES ? 2 : 0],
        ['remove', any.length > 0 && datanodes('running', 'killed', 'stopped').length > 1 ? 1 : 0],
        ['namenode-restart', busy.has('namenode/0') ? 0 : 1],
      ];
      const total = choices.reduce((s, [, w]) => s + w, 0);
      let r = rand() * total;
      const action = choices.find(([, w]) => (r -= w) < 0)?.[0] ?? 'none';
      switch (action) {
        case 'kill': {
          const u = pick(running);
          launch(u, async () => {
            await killUnit(home, u, opts);
            units.set(u, 'killed');
            say('kill -9', u, 'killed');
          });
          break;
        }
        case 'stop': {
          const u = pick(running);
          launch(u, async () => {
            await stopUnit(home, u, opts);
            units.set(u, 'stopped');
            say('stop', u, 'stopped');
          });
          break;
        }
        case 'start': {
          const u = pick(down);
          launch(u, async () => {
            await startUnit(home, u, opts);
            units.set(u, 'running');
            say('start', u, 'running');
          });
          break;
        }
        case 'add': {
          launch('add-unit', async () => {
            const u = await addUnit(home, 'datanode', opts);
            units.set(u.unit, 'running');
            say('add-unit', u.unit, 'running');
          });
          break;
        }
        case 'remove': {
          const u = pick(any);
          launch(u, async () => {
            await removeUnit(home, u, { deployment: NAME });
            units.delete(u);
            say('remove-unit', u, 'removed');
          });
          break;
        }
        case 'namenode-restart': {
          const pause = Math.floor(rand() * 2_000);
          launch('namenode/0', async () => {
            await killUnit(home, 'namenode/0', opts);
            say('kill -9', 'namenode/0', 'killed');
            await new Promise((res) => setTimeout(res, pause));
            await startUnit(home, 'namenode/0', opts);
            say('start', 'namenode/0', 'running');
          });
          break;
        }
        default:
      }
      // The next operation comes after a pause, or once one finishes if PARALLEL are running.
      const pause = new Promise((res) => setTimeout(res, 200 + Math.floor(rand() * 1_800)));
      await pause;
      if (inflight.size >= PARALLEL) await Promise.race(inflight);
      if (failures.length > 0) break;
    }
    await Promise.all(inflight);
    if (failures.length > 0) throw failures[0];

    // Settle: the namenode is always up at the end (the datanodes' states are the schedule's).
    const d = await readDeployment(home, NAME);
    if (d.units['namenode/0']?.state !== 'running') await startUnit(home, 'namenode/0', opts);
    const reload = () => readDeployment(home, NAME);
    const ms = await waitForConvergence(await reload(), { timeoutMs: CONVERGE_MS, reload });
    say('converge', undefined, `converged in ${ms} ms`);

    // Invariants.
    const final = await reload();
    const live = Object.values(final.units).filter((u) => u.state === 'running');
    const liveDatanodes = live.filter((u) => u.service === 'datanode').map((u) => u.unit);
    expect(live.map((u) => u.unit).sort()).toEqual([...units].filter(([, s]) => s === 'running').map(([u]) => u).sort());
    const want = naturalSort(liveDatanodes.map(unitLabel));
    const workersFile = join(unitDir(home, NAME, 'namenode/0'), 'workers');
    const workers = async (): Promise<string[]> => (await readFile(workersFile, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    await until(`workers = [${want.join(', ')}]`, async () => ((await workers()).join(',') === want.join(',') ? true : undefined), 15_000).catch(async (err: unknown) => {
      throw new Error(`${(err as Error).message}; workers are [${(await workers()).join(', ')}]`);
    });
    expect(new Set(await workers()).size).toBe((await workers()).length);
    for (const u of liveDatanodes) {
      const xml = await readFile(join(unitDir(home, NAME, u), 'core-site.xml'), 'utf8');
      expect(`${u}: ${parseHadoopXml(xml)['fs.defaultFS']}`).toBe(`${u}: ${FS}`);
    }
    for (const u of live) {
      const c = await (await clientFor(unitOf(final, u.unit), 5_000)).get<LocalConvergence>('/converged');
      expect(`${u.unit}: ${c.error?.message ?? 'no error'}`).toBe(`${u.unit}: no error`);
      expect(new Set(c.members).size).toBe(c.members.length);
      for (const rel of c.relations) expect(`${u.unit} ${rel.id}: ${new Set(rel.units).size}`).toBe(`${u.unit} ${rel.id}: ${rel.units.length}`);
    }
  } catch (err) {
    process.stdout.write(
      `chaos seed ${seed} FAILED; replay with RHIZOME_CHAOS_SEEDS=${seed}. Schedule:\n${log.map((s) => `  +${(s.atMs / 1000).toFixed(1)}s ${s.action} ${s.unit ?? ''} ${s.outcome}`).join('\n')}\n`,
    );
    throw err;
  } finally {
    await destroy(home, { deployment: NAME }).catch(() => undefined);
  }
}

describe('chaos on the hadoop bundle', () => {
  const seeds = seedsForThisRun();
  process.stdout.write(`chaos seeds this run: ${seeds.join(', ')} (replay: RHIZOME_CHAOS_SEEDS=${seeds.join(',')})\n`);
  // The seeds run at once, each in a home of its own (its own deployment,
  // ports and processes): the file takes one chaos period, not two. Neither
  // is about timing, and the extra load on the machine is more chaos.
  for (const seed of seeds) {
    it.concurrent(`seed ${seed}: converges after ${Math.round(CHAOS_MS / 1000)} s of kills, stops, starts, add-unit, remove-unit and namenode restarts`, { timeout: CHAOS_MS + CONVERGE_MS + 120_000 }, ({ expect }) => runChaos(seed, expect));
  }
});
