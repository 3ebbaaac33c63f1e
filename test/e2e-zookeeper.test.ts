/**
 * examples/zookeeper/bundle.yaml end to end: real agents running real
 * ZooKeeper servers (Debian's package) on 127.0.0.1. Checked by reading and
 * writing real data through ZooKeeper's own client, not by reading config
 * files: a znode written through one server is read through another; the
 * ensemble has exactly one leader; the leader's unit is SIGKILLed (agent
 * and server) → a new leader is elected and the data is still there;
 * `add-unit` grows the ensemble to 4 by dynamic reconfiguration (every live
 * server reports the same membership) and it still serves; `destroy`
 * leaves no ZooKeeper process.
 */
import { execFile } from 'node:child_process';
import { access, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUnit, deploy, destroy, killUnit } from '@rhizome/agent';
import { converge, ROOT, unitDir, unitStatus, writeBundle } from './e2e-support';
import { until } from '@rhizome/test-support';

const NAME = 'zookeeper';
// Port bases other than the example's, so a test run and a demo never collide.
const CLIENT = 14181;
const QUORUM = 14888;
const ELECTION = 15888;
const zkInstalled = await access('/usr/share/java/zookeeper.jar').then(
  () => true,
  () => false,
);
let home = '';
let bundle = '';

/** ZooKeeper's own CLI, one command, against one server. */
function zkCli(port: number, ...command: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile('java', ['-cp', '/usr/share/java/zookeeper.jar', 'org.apache.zookeeper.ZooKeeperMain', '-server', `127.0.0.1:${port}`, ...command], { timeout: 30_000 }, (_err, stdout, stderr) =>
      resolve(`${stdout}${stderr}`),
    );
  });
}

/** A four-letter word's answer ('' when the server does not answer). */
async function flw(port: number, word: string): Promise<string> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.end(word));
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('error', () => resolve(''));
    s.on('close', () => resolve(out));
    s.setTimeout(3_000, () => s.destroy());
  });
}
const modeOf = async (port: number): Promise<string | undefined> => /^Mode: (\S+)/m.exec(await flw(port, 'srvr'))?.[1];
const membersOf = async (port: number): Promise<string> => (await flw(port, 'conf')).split('\n').filter((l) => l.startsWith('server.')).sort().join('\n');

/** Pids of this test's ZooKeeper servers that still run (their command line names this home). */
async function ourServers(): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
    if (cmdline.includes('QuorumPeerMain') && cmdline.includes(home)) out.push(Number(entry));
  }
  return out;
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'rhizome-e2e-zk-'));
  const example = await readFile(join(ROOT, 'examples/zookeeper/bundle.yaml'), 'utf8');
  bundle = await writeBundle(
    home,
    `${example.replace(/charm: \.\.\/\.\.\/charms\//g, 'charm: charms/')}    options: { client-port: ${CLIENT}, quorum-port: ${QUORUM}, election-port: ${ELECTION} }\n`,
  );
});
afterAll(async () => {
  await destroy(home, { deployment: NAME, keep: true }).catch(() => undefined);
  // Safety net for a failed test: only this test's servers, by pid.
  for (const pid of await ourServers()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await rm(home, { recursive: true, force: true });
}, 60_000);

describe.skipIf(!zkInstalled)('the zookeeper bundle on real agents and real servers', () => {
  it('forms a quorum, survives losing its leader, grows by add-unit and leaves nothing behind', { timeout: 300_000 }, async () => {
    await deploy(bundle, { home, timeoutMs: 180_000, noFsync: true });
    const ports = [CLIENT, CLIENT + 1, CLIENT + 2];

    // Exactly one leader, and every server reports the same three members.
    const modes = await until('every server to serve', async () => {
      const m = await Promise.all(ports.map(modeOf));
      return m.every((x) => x !== undefined) ? m : undefined;
    }, 60_000);
    expect(modes.filter((m) => m === 'leader')).toHaveLength(1);
    const members = await membersOf(ports[0]!);
    expect(members.split('\n')).toHaveLength(3);
    for (const p of ports) expect(await membersOf(p)).toBe(members);

    // Status shows each unit's real role and the ensemble size.
    const leaderIndex = modes.indexOf('leader');
    const leaderUnit = `zookeeper/${leaderIndex}`;
    await until('status to show the roles', async () => {
      const msgs = await Promise.all([0, 1, 2].map(async (i) => (await unitStatus(home, NAME, `zookeeper/${i}`)).workload?.message ?? ''));
      return msgs.every((m, i) => m.startsWith(`${modes[i]}, ensemble of 3`)) ? true : undefined;
    }, 60_000);

    // Written through one server, read through another.
    const writer = ports[(leaderIndex + 1) % 3]!;
    const reader = ports[(leaderIndex + 2) % 3]!;
    expect(await zkCli(writer, 'create', '/rhizome-e2e', 'hello-from-rhizome')).toContain('Created /rhizome-e2e');
    expect(await until('the znode through another server', async () => ((await zkCli(reader, 'get', '/rhizome-e2e')).includes('hello-from-rhizome') ? true : undefined), 60_000)).toBe(true);

    // The leader's unit dies: agent and server.
    const leaderPid = Number((await readFile(join(unitDir(home, NAME, leaderUnit), 'zk', 'zookeeper.pid'), 'utf8')).trim());
    await killUnit(home, leaderUnit, { deployment: NAME });
    process.kill(leaderPid, 'SIGKILL');
    const survivors = ports.filter((_, i) => i !== leaderIndex);
    const newModes = await until('a new leader among the survivors', async () => {
      const m = await Promise.all(survivors.map(modeOf));
      return m.filter((x) => x === 'leader').length === 1 && m.every((x) => x !== undefined) ? m : undefined;
    }, 60_000);
    expect(newModes.sort()).toEqual(['follower', 'leader']);
    expect(await zkCli(survivors[0]!, 'get', '/rhizome-e2e')).toContain('hello-from-rhizome');

    // A fourth unit joins by dynamic reconfiguration; the two survivors and it form a quorum of 4.
    const added = await addUnit(home, 'zookeeper', { deployment: NAME, noFsync: true });
    expect(added.unit).toBe('zookeeper/3');
    await converge(home, NAME, 180_000);
    const live = [...survivors, CLIENT + 3];
    const grown = await until('every live server to report 4 members', async () => {
      const all = await Promise.all(live.map(membersOf));
      return all.every((m) => m === all[0] && m.split('\n').length === 4) ? all[0] : undefined;
    }, 60_000);
    expect(grown).toContain(`server.4=127.0.0.1:${QUORUM + 3}:${ELECTION + 3}:participant;127.0.0.1:${CLIENT + 3}`);
    expect(await zkCli(CLIENT + 3, 'get', '/rhizome-e2e')).toContain('hello-from-rhizome');
    expect(await zkCli(CLIENT + 3, 'set', '/rhizome-e2e', 'after-growth')).not.toMatch(/KeeperErrorCode/);
    expect(await zkCli(survivors[0]!, 'get', '/rhizome-e2e')).toContain('after-growth');

    // destroy stops every server, even the SIGKILLed unit's (already gone) and the others (workloads).
    expect((await ourServers()).length).toBe(3);
    await destroy(home, { deployment: NAME, keep: true });
    expect(await ourServers()).toEqual([]);
  });
});
