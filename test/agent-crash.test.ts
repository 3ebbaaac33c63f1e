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
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientFor, deploy, destroy, readDeployment, startUnit, waitForConvergence, type AgentInfo, type Deployment, type LocalConvergence } from '@rhizome/agent';
import type { ControlClient } from '../packages/agent/src/control/client';
import { AGENT_CONFIG_FILE } from '../packages/agent/src/deploy/deploy';
import { agentCommand } from '../packages/agent/src/runtime';
import { readAgentInfo } from '../packages/agent/src/deploy/deployment';

const BUNDLE = join(import.meta.dirname, '../packages/agent/test/fixtures/bundles/crash.yaml');
const KILLS = 50;
// Normally ~80 s on 2 busy cores; the bound only stops a pathologically slow machine from looping on.
const LOOP_BUDGET_MS = 170_000;
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
    const { deployment } = await deploy(BUNDLE, { home, timeoutMs: 90_000 });
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
      while (publishing && value < 5_000) {
        value++;
        await sender.json('POST', '/event', { name: 'count', payload: { value } }).catch(() => undefined);
        await sleep(40);
      }
    })();

    // the first receiver process (from deploy) dies first, at a random instant
    await sleep(Math.random() * 500);
    killGroup(d.units['receiver/0']!.pid);
    await sleep(100);

    const observations: number[][] = [];
    const sentSeen: number[] = [];
    let kills = 1;
    let senderKills = 0;
    let senderPid = d.units['sender/0']!.pid;
    const started = Date.now();
    let killedDuringStartup = 0;
    while (kills < KILLS && Date.now() - started < LOOP_BUDGET_MS) {
      if (kills % 10 === 5 && senderKills < 5) {
        // now and then the sender crashes too (its outbox and link store must survive);
        // it comes back on the same gossip port, where the receiver's seed points
        const facts = await sender.get<Record<string, unknown>>('/facts').catch(() => undefined);
        if (typeof facts?.['sent'] === 'number') sentSeen.push(facts['sent']);
        await sleep(Math.random() * 300);
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
      const child = await spawnAgent(d, 'receiver/0', seeds);
      if (kills % 2 === 0) {
        // anywhere from boot through recovery to the first runs
        await sleep(Math.random() * 1_500);
        if ((await readAgentInfo(d.units['receiver/0']!.dataDir))?.pid !== child.pid) killedDuringStartup++;
      } else {
        // once it serves: observe its committed facts, then kill it mid-stream
        const info = await serving(d, 'receiver/0', child);
        if (info) {
          const u = { ...d.units['receiver/0']!, controlUrl: info.controlUrl };
          await sleep(Math.random() * 400);
          const facts = await (await clientFor(u, 2_000)).get<Record<string, unknown>>('/facts').catch(() => undefined);
          const applied = facts?.['applied.sender-0'];
          if (Array.isArray(applied)) observations.push(applied as number[]);
          await sleep(Math.random() * 300);
        }
      }
      killGroup(child.pid!);
      await exited(child);
      kills++;
    }
    publishing = false;
    await publisher;
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
    console.log(`crash test: ${kills} receiver kills (${killedDuringStartup} during start-up), ${senderKills} sender kills, ${value} values published, ${applied.length} applied, ${observations.length} observations`);
  }, 400_000);
});
