/**
 * The namespace harness itself: hosts reach each other over the bridge and
 * not the machine's network, faults (link down, partition, loss) take effect
 * and are undone, and cleanup leaves no namespace and no process behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from './run.js';
import { createHosts, netnsUnavailableReason, type Host, type HostNetwork } from './index.js';
import { until } from '@rhizome/test-support';

const reason = await netnsUnavailableReason();
if (reason) console.warn(`skipping network-namespace tests: ${reason}`);

const PORT = 23001;
// A TCP server that answers each connection with its host's name.
const SERVER = `require('net').createServer((s) => s.end(process.argv[1])).listen(${PORT}, '0.0.0.0', () => console.log('listening'))`;
// Connects, prints what the server said, or "fail" after a bounded wait.
const CLIENT = `const s = require('net').connect(${PORT}, process.argv[1]); let d=''; s.setTimeout(800, () => { console.log('fail'); process.exit(0); }); s.on('data', (c) => d += c); s.on('end', () => { console.log(d); process.exit(0); }); s.on('error', () => { console.log('fail'); process.exit(0); });`;

async function reach(from: Host, to: Host): Promise<string> {
  const r = await from.exec(process.execPath, ['-e', CLIENT, to.address]);
  return r.stdout.trim();
}

describe.skipIf(reason !== undefined)(`network-namespace hosts${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let net: HostNetwork;
  beforeAll(async () => {
    net = await createHosts({ prefix: 'mh-t', addresses: ['10.231.9.1', '10.231.9.2', '10.231.9.3'] });
    for (const h of net.hosts) {
      const p = h.spawn(process.execPath, ['-e', SERVER, h.name]);
      await until(`${h.name}'s server listening`, () => p.output().includes('listening'), 10_000);
    }
  });
  afterAll(async () => {
    await net?.cleanup();
  });

  it('hosts reach each other by address, each with its own loopback', async () => {
    const [h1, h2, h3] = net.hosts as [Host, Host, Host];
    expect(await reach(h1, h2)).toBe(h2.name);
    expect(await reach(h3, h1)).toBe(h1.name);
    // 127.0.0.1 inside a host is that host's own server.
    const local = await h2.exec(process.execPath, ['-e', CLIENT, '127.0.0.1']);
    expect(local.stdout.trim()).toBe(h2.name);
    // The root namespace has no route into the hosts' subnet through us.
    const addrs = await runCommand('ip', ['-o', 'addr']);
    expect(addrs.stdout).not.toContain('10.231.9.');
  });

  it('a link goes down and comes back', async () => {
    const [h1, h2] = net.hosts as [Host, Host];
    await net.linkDown(h2);
    expect(await reach(h1, h2)).toBe('fail');
    await net.linkUp(h2);
    expect(await reach(h1, h2)).toBe(h2.name);
  });

  it('a partition blocks traffic between groups only, and heals', async () => {
    const [h1, h2, h3] = net.hosts as [Host, Host, Host];
    await net.partition([h1], [h2, h3]);
    expect(await reach(h1, h2)).toBe('fail');
    expect(await reach(h3, h1)).toBe('fail');
    expect(await reach(h2, h3)).toBe(h3.name);
    await net.heal();
    expect(await reach(h1, h2)).toBe(h2.name);
  });

  it('loss drops incoming packets at random; 0 removes it', async () => {
    const [h1, h2] = net.hosts as [Host, Host];
    await net.setLoss(h2, 1);
    expect(await reach(h1, h2)).toBe('fail');
    await net.setLoss(h2, 0);
    expect(await reach(h1, h2)).toBe(h2.name);
    await expect(net.setLoss(h2, 1.5)).rejects.toThrow(/0\.\.1/);
  });

  it('rejects bad options before touching the system', async () => {
    await expect(createHosts({ prefix: 'Bad Prefix', addresses: ['10.231.9.1'] })).rejects.toThrow(/prefix/);
    await expect(createHosts({ prefix: 'mh-x', addresses: ['127.0.0.2'] })).rejects.toThrow(/loopback/);
    await expect(createHosts({ prefix: 'mh-x', addresses: ['10.231.9.1', '10.231.9.1'] })).rejects.toThrow(/distinct/);
  });

  it('cleanup kills its processes and deletes every namespace with the prefix', async () => {
    const other = await createHosts({ prefix: 'mh-u', addresses: ['10.231.8.1', '10.231.8.2'] });
    const p = other.hosts[0]!.spawn('sleep', ['600']);
    // A grandchild inside the namespace (not started through spawn) is found too.
    await other.hosts[1]!.exec('bash', ['-c', 'setsid sleep 600 >/dev/null 2>&1 < /dev/null & disown']);
    const pids = (await runCommand('ip', ['netns', 'pids', other.hosts[1]!.name])).stdout.split(/\s+/).filter(Boolean).map(Number);
    expect(pids.length).toBeGreaterThan(0);
    await other.cleanup();
    expect(await p.exited).toBeDefined();
    const list = await runCommand('ip', ['netns', 'list']);
    expect(list.stdout).not.toMatch(/^mh-u-/m);
    // SIGKILLed orphans are reaped by init shortly after; wait for that (bounded).
    const alive = (): number[] => pids.filter((pid) => { try { process.kill(pid, 0); return true; } catch { return false; } });
    await until('the SIGKILLed processes reaped', () => alive().length === 0, 5_000);
  });
});
