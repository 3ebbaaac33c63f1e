/**
 * Crash test with real processes: a sender unit publishes an increasing
 * counter over a relation, continuously; the receiving agent is SIGKILLed at
 * 50+ random instants (during start-up and recovery, while applying link
 * messages, while committing) and restarted from its data directory each
 * time. The receiving charm appends every value it applies to a fact.
 *
 * Checked:
 *   - no committed run is lost: every applied list observed through the
 *     control API (which shows only durable commits) is a prefix of the final one;
 *   - none is applied twice: the final list is strictly increasing;
 *   - the cluster converges to the configuration of a run without crashes:
 *     the receiver's view of the sender's bag is the sender's last committed
 *     bag (same version), and its last applied value is the last value sent.
 *
 * Every random choice (kill instants, which pauses) comes from a seeded PRNG
 * whose seed is printed; AGENT_CRASH_SEED=<n> replays the same choices (what
 * the agents are doing at each instant still depends on the machine).
 *
 * No wall-clock budget for the whole loop (on a loaded machine it cut the
 * test short at 40-odd kills): the loop is bounded by its count, and each
 * kill by KILL_STALL_MS, which only a stuck agent or machine exceeds. Kills
 * during start-up land within a window scaled to the start-up time measured
 * in this run, so they cover boot and recovery on a fast or a slow machine
 * without idling past them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientFor, deploy, destroy, readDeployment, startUnit, waitForConvergence, type AgentInfo, type Deployment, type LocalConvergence } from '@rhizome/agent';
import type { ControlClient } from '../packages/agent/src/control/client';
import { AGENT_CONFIG_FILE } from '../packages/agent/src/deploy/unit-process';
import { agentCommand } from '../packages/agent/src/runtime';
import { readAgentInfo } from '../packages/agent/src/deploy/deployment';
import { seededRandom } from '@rhizome/gossip/testing';
import { testSeed } from '@rhizome/test-support';

const BUNDLE = join(import.meta.dirname, '../packages/agent/test/fixtures/bundles/crash.yaml');
const KILLS = 50;
/** One kill (restart, wait, kill; now and then a sender restart) taking longer than this means something is stuck. */
const KILL_STALL_MS = 60_000;

const SEED = testSeed('AGENT_CRASH_SEED', 'agent crash test');
const random = seededRandom(SEED);
let home = '';
const spawned: number[] = [];

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // gone
  }
}

async function spawnAgent(d: Deployment, unit: string, extra: string[]): Promise<ChildProcess> {
  const u = d.units[unit]!;
  const out = await open(join(u.dataDir, 'agent.out'), 'a');
  // The agent.yaml deploy wrote for the unit (charm, compiled module, data dir, options).
  const cmd = agentCommand(join(u.dataDir, AGENT_CONFIG_FILE), ['--log-level', 'info', ...extra]);
  const child = spawn(cmd.command, [...cmd.args], { detached: true, stdio: ['ignore', out.fd, out.fd] });
  await out.close();
  spawned.push(child.pid!);
  return child;
}

/** Waits until the unit's agent.json names `pid` (it serves); undefined if it did not within the bound. */
async function serving(d: Deployment, unit: string, child: ChildProcess, timeoutMs = 30_000): Promise<AgentInfo | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await readAgentInfo(d.units[unit]!.dataDir);
    if (info?.pid === child.pid) return info;
    if (Date.now() > deadline || child.exitCode !== null) return undefined;
    await sleep(50);
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor(s.length / 2)]!;
}

/** How long after spawning a start-up kill may wait: 1.2 × the median start-up so far, within 0.3-2.5 s. */
function startupWindowMs(startups: readonly number[]): number {
  if (startups.length === 0) return 1_500;
  return Math.min(2_500, Math.max(300, 1.2 * median(startups)));
}

const exited = (c: ChildProcess): Promise<void> => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', () => r())));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'rz-crash-'));
});

afterAll(async () => {
  await destroy(home, { deployment: 'crash', timeoutMs: 10_000 }).catch(() => undefined);
  for (const pid of spawned) killGroup(pid);
  await rm(home, { recursive: true, force: true });
}, 60_000);

describe('crash test: SIGKILL the receiving agent at random instants during a stream of relation changes', () => {
  it(`loses no committed run, applies none twice, and converges (${KILLS} kills)`, async () => {
    const t0 = Date.now();
    const { deployment } = await deploy(BUNDLE, { home, timeoutMs: 90_000 });
    const deployMs = Date.now() - t0;
    const d = deployment;
    for (const u of Object.values(d.units)) spawned.push(u.pid);
    let sender: ControlClient = await clientFor(d.units['sender/0']!);
    const senderAddress = d.units['sender/0']!.gossipAddress;
    const senderPort = senderAddress.split(':')[1]!;
    const seeds = ['--seed', senderAddress];

    // the stream: the sender publishes value 1, 2, 3... every ~40 ms (a post may fail while the sender is down)
    let value = 0;
    let publishing = true;
    const publisher = (async () => {
      while (publishing && value < 20_000) {
        value++;
        await sender.json('POST', '/event', { name: 'count', payload: { value } }).catch(() => undefined);
        await sleep(40);
      }
    })();

    // the first receiver process (from deploy) dies first, at a random instant
    await sleep(random() * 500);
    killGroup(d.units['receiver/0']!.pid);
    await sleep(100);

    const observations: number[][] = [];
    const sentSeen: number[] = [];
    let kills = 1;
    let senderKills = 0;
    let senderPid = d.units['sender/0']!.pid;
    const started = Date.now();
    let killedDuringStartup = 0;
    /** Spawn-to-serving times of the receiver in this run (ms): they size the start-up kill window. */
    const startups: number[] = [];
    while (kills < KILLS) {
      const killStarted = Date.now();
      if (kills % 10 === 5 && senderKills < 5) {
        // now and then the sender crashes too (its outbox and link store must survive);
        // it comes back on the same gossip port, where the receiver's seed points
        const facts = await sender.get<Record<string, unknown>>('/facts').catch(() => undefined);
        if (typeof facts?.['sent'] === 'number') sentSeen.push(facts['sent']);
        await sleep(random() * 300);
        killGroup(senderPid);
        await sleep(50);
        const child = await spawnAgent(d, 'sender/0', ['--bind-port', senderPort]);
        const info = await serving(d, 'sender/0', child);
        if (!info) throw new Error('the sender did not restart');
        senderPid = child.pid!;
        sender = await clientFor({ ...d.units['sender/0']!, controlUrl: info.controlUrl });
        const after = await sender.get<Record<string, unknown>>('/facts');
        sentSeen.push(after['sent'] as number);
        senderKills++;
      }
      const spawnedAt = Date.now();
      const child = await spawnAgent(d, 'receiver/0', seeds);
      if (kills % 2 === 0) {
        // anywhere from boot through recovery to the first runs: up to 1.2 × the
        // median start-up seen so far (1.5 s until one was seen)
        await sleep(random() * startupWindowMs(startups));
        if ((await readAgentInfo(d.units['receiver/0']!.dataDir))?.pid !== child.pid) killedDuringStartup++;
      } else {
        // once it serves: observe its committed facts, then kill it mid-stream
        const info = await serving(d, 'receiver/0', child);
        if (info) {
          startups.push(Date.now() - spawnedAt);
          const u = { ...d.units['receiver/0']!, controlUrl: info.controlUrl };
          await sleep(random() * 400);
          const facts = await (await clientFor(u, 2_000)).get<Record<string, unknown>>('/facts').catch(() => undefined);
          const applied = facts?.['applied.sender-0'];
          if (Array.isArray(applied)) observations.push(applied as number[]);
          await sleep(random() * 300);
        }
      }
      killGroup(child.pid!);
      await exited(child);
      kills++;
      const took = Date.now() - killStarted;
      if (took > KILL_STALL_MS) throw new Error(`kill ${kills} took ${took} ms (bound ${KILL_STALL_MS} ms): an agent or the machine is stuck; seed ${SEED}`);
    }
    const loopMs = Date.now() - started;
    publishing = false;
    await publisher;
    const convergeFrom = Date.now();
    expect(kills).toBeGreaterThanOrEqual(KILLS);
    expect(senderKills).toBeGreaterThanOrEqual(3);
    // the sender never lost a committed publish across its crashes
    for (let i = 1; i < sentSeen.length; i++) expect(sentSeen[i]!).toBeGreaterThanOrEqual(sentSeen[i - 1]!);

    // restart the receiver for good, publish a last value, and let the cluster converge
    await startUnit(home, 'receiver/0', { deployment: 'crash' });
    const last = ++value;
    await sender.json('POST', '/event', { name: 'count', payload: { value: last } });
    const reload = async (): Promise<Deployment> => {
      const dep = await readDeployment(home, 'crash');
      const info = await readAgentInfo(dep.units['sender/0']!.dataDir);
      if (info) Object.assign(dep.units['sender/0']!, { pid: info.pid, controlUrl: info.controlUrl, gossipAddress: info.gossipAddress });
      return dep;
    };
    await waitForConvergence(await reload(), { timeoutMs: 90_000, reload });
    const convergeMs = Date.now() - convergeFrom;

    const dep = await reload();
    const receiver = await clientFor(dep.units['receiver/0']!);
    const facts = await receiver.get<Record<string, unknown>>('/facts');
    const applied = facts['applied.sender-0'] as number[];
    const sent = (await sender.get<Record<string, unknown>>('/facts'))['sent'];

    // none applied twice, in order
    for (let i = 1; i < applied.length; i++) expect(applied[i]!).toBeGreaterThan(applied[i - 1]!);
    // no committed run lost: everything ever observed as committed is still there, in place
    expect(observations.length).toBeGreaterThan(5);
    for (const o of observations) expect(applied.slice(0, o.length)).toEqual(o);
    // same configuration as without crashes: the last value sent, at the sender's bag version
    expect(sent).toBe(last);
    expect(facts['last.sender-0']).toBe(last);
    const [rc, sc] = await Promise.all([receiver.get<LocalConvergence>('/converged'), sender.get<LocalConvergence>('/converged')]);
    const view = rc.views.find((v) => v.unit === 'sender/0')!;
    expect(view.version).toBe(sc.published['feed']!.version);
    expect(view.incarnation).toBe(sc.published['feed']!.incarnation);
    // the start-up window did put kills inside start-up and recovery
    expect(killedDuringStartup).toBeGreaterThanOrEqual(3);
    console.log(
      `crash test (seed ${SEED}): ${kills} receiver kills (${killedDuringStartup} during start-up) in ${(loopMs / 1000).toFixed(0)} s ` +
        `(deploy ${(deployMs / 1000).toFixed(0)} s, final restart and convergence ${(convergeMs / 1000).toFixed(0)} s), ` +
        `median start-up ${median(startups)} ms, ${senderKills} sender kills, ${value} values published, ${applied.length} applied, ${observations.length} observations`,
    );
  }, 600_000);
});
