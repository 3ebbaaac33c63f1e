/**
 * A deployment record names each unit's agent by pid. After the agent dies
 * the kernel may give that pid to any other process: reading the record
 * must then forget the pid (so `stop`/`destroy` never signal a stranger),
 * while a live agent's pid is kept. Real processes stand in for agents.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AGENT_INFO_FILE, writeJsonAtomic } from '../../src/agent-info';
import { deploymentDir, readDeployment, recordPid, writeDeployment, type Deployment, type DeployedUnit } from '../../src/deploy/deployment';

let home = '';
const children: ChildProcess[] = [];

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'rz-agent-pid-'));
});
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await rm(home, { recursive: true, force: true });
});

function sleeper(): number {
  const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  children.push(c);
  return c.pid!;
}

async function deploymentWith(unit: DeployedUnit): Promise<Deployment> {
  const d: Deployment = { name: 'd', bundleFile: 'b.yaml', home, createdAt: Date.now(), units: { [unit.unit]: unit }, relations: [] };
  await mkdir(deploymentDir(home, 'd'), { recursive: true });
  await writeDeployment(d);
  return d;
}

function unit(dataDir: string): DeployedUnit {
  return { unit: 'web/0', service: 'web', charmDir: '/nowhere', dataDir, options: {}, pid: 0, controlUrl: '', gossipAddress: '', state: 'running' };
}

describe('agent pids in the deployment record', () => {
  it('keeps the pid of the process it recorded', async () => {
    const u = unit(join(home, 'web-0'));
    await recordPid(u, sleeper());
    await deploymentWith(u);
    expect((await readDeployment(home, 'd')).units['web/0']!.pid).toBe(u.pid);
  });

  it('forgets a pid that now belongs to a different process (same pid, other start time)', async () => {
    const u = unit(join(home, 'web-0'));
    await recordPid(u, sleeper());
    u.pidStartTicks = u.pidStartTicks! - 1; // as if our agent had started a tick earlier and died
    await deploymentWith(u);
    const read = (await readDeployment(home, 'd')).units['web/0']!;
    expect(read.pid).toBe(0);
  });

  it("does not adopt a live pid from an agent.json written before that process started", async () => {
    const dataDir = join(home, 'web-0');
    await mkdir(dataDir, { recursive: true });
    const stranger = sleeper();
    await writeJsonAtomic(join(dataDir, AGENT_INFO_FILE), {
      unit: 'web/0', service: 'web', pid: stranger, controlUrl: 'http://127.0.0.1:1', gossipAddress: '127.0.0.1:2', dataDir, unitDir: dataDir, startedAt: 0,
    });
    const past = new Date(Date.now() - 60_000);
    await utimes(join(dataDir, AGENT_INFO_FILE), past, past); // written a minute before the stranger started
    await deploymentWith(unit(dataDir));
    expect((await readDeployment(home, 'd')).units['web/0']!.pid).toBe(0);
  });

  it('adopts the pid of an agent restarted by other means (agent.json written after it started)', async () => {
    const dataDir = join(home, 'web-0');
    await mkdir(dataDir, { recursive: true });
    const restarted = sleeper();
    await new Promise((r) => setTimeout(r, 50));
    await writeJsonAtomic(join(dataDir, AGENT_INFO_FILE), {
      unit: 'web/0', service: 'web', pid: restarted, controlUrl: 'http://127.0.0.1:1', gossipAddress: '127.0.0.1:2', dataDir, unitDir: dataDir, startedAt: Date.now(),
    });
    await deploymentWith(unit(dataDir));
    const read = (await readDeployment(home, 'd')).units['web/0']!;
    expect(read.pid).toBe(restarted);
    expect(read.pidStartTicks).toBeGreaterThan(0);
  });
});
