import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createNode, createWsTransport, LOCAL_PROFILE, type GossipNode } from '@rhizome/gossip';
import { createLogger } from '../../src/log/logger';
import { MESH_MEMORY_FILE, readMeshMemory, Rejoiner } from '../../src/mesh/rejoin';
import { until } from '@rhizome/test-support';

const log = createLogger({ unit: 'test', level: 'silent' });
const dirs: string[] = [];
const running: Array<{ node: GossipNode; rejoiner: Rejoiner }> = [];

afterEach(async () => {
  for (const r of running.splice(0)) {
    await r.rejoiner.close();
    await r.node.shutdown();
  }
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'rhizome-rejoin-'));
  dirs.push(d);
  return d;
}

/** What the agent does at start: listen on the remembered port if any, join seeds + remembered members. */
async function startMember(name: string, dataDir: string, seeds: readonly string[]): Promise<{ node: GossipNode; rejoiner: Rejoiner }> {
  const remembered = await readMeshMemory(dataDir);
  const transport = await createWsTransport({ host: '127.0.0.1', port: remembered.port ?? 0 });
  const node = createNode({ name, transport, profile: LOCAL_PROFILE });
  const rejoiner = new Rejoiner({ node, dataDir, seeds, remembered, log, retryMs: 100, writeDelayMs: 20 });
  const started = { node, rejoiner };
  running.push(started);
  void rejoiner.start();
  return started;
}

/** A crash: nothing said to anyone, the port closed. */
async function crash(m: { node: GossipNode; rejoiner: Rejoiner }): Promise<void> {
  running.splice(running.indexOf(m), 1);
  await m.rejoiner.close();
  await m.node.shutdown();
}

const sees = (a: GossipNode, b: string): boolean => a.members().some((m) => m.name === b && m.status === 'alive');

describe('rejoin: Serf snapshot + retry_join for agents', () => {
  it('two members that crashed and restart with no seeds at all, one after the other, find each other again on the same ports', async () => {
    const [dirA, dirB] = [await tempDir(), await tempDir()];
    const a = await startMember('a/0', dirA, []);
    const b = await startMember('b/0', dirB, [a.node.address]);
    await until('a and b see each other', () => sees(a.node, 'b/0') && sees(b.node, 'a/0'), 10_000);
    const [addrA, addrB] = [a.node.address, b.node.address];
    await until('both remember the other', async () => {
      const [ma, mb] = [await readMeshMemory(dirA), await readMeshMemory(dirB)];
      return ma.peers['b/0'] === addrB && mb.peers['a/0'] === addrA;
    }, 10_000);
    await crash(a);
    await crash(b);

    // a comes back first, alone (b is down; its seeds are empty): it keeps trying what it remembers.
    const a2 = await startMember('a/0', dirA, []);
    expect(a2.node.address).toBe(addrA);
    // Its start waited for one join attempt at what it remembers; b is down, so that attempt found no one.
    expect(sees(a2.node, 'b/0')).toBe(false);
    // b comes back, also with no seeds: whichever tries first, they meet.
    const b2 = await startMember('b/0', dirB, []);
    expect(b2.node.address).toBe(addrB);
    await until('a and b meet again', () => sees(a2.node, 'b/0') && sees(b2.node, 'a/0'), 10_000);
  });

  it('forgets a member that left gracefully, and reads a missing or garbled memory as empty', async () => {
    const [dirA, dirB] = [await tempDir(), await tempDir()];
    const a = await startMember('a/0', dirA, []);
    const b = await startMember('b/0', dirB, [a.node.address]);
    await until('a remembers b', async () => (await readMeshMemory(dirA)).peers['b/0'], 10_000);
    running.splice(running.indexOf(b), 1);
    await b.rejoiner.close();
    await b.node.leave();
    await b.node.shutdown();
    await until('a forgets b', async () => ((await readMeshMemory(dirA)).peers['b/0'] === undefined ? true : undefined), 10_000);

    const empty = await tempDir();
    expect(await readMeshMemory(empty)).toEqual({ peers: {} });
    for (const junk of ['not json', '[1,2]', '{"port":"x","peers":{"a":5}}', '{"port":70000,"peers":null}']) {
      await writeFile(join(empty, MESH_MEMORY_FILE), junk);
      expect(await readMeshMemory(empty)).toEqual({ peers: {} });
    }
    const many = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`u/${i}`, `127.0.0.1:${10_000 + i}`]));
    await writeFile(join(empty, MESH_MEMORY_FILE), JSON.stringify({ port: 7946, peers: many }));
    const bounded = await readMeshMemory(empty);
    expect(bounded.port).toBe(7946);
    expect(Object.keys(bounded.peers).length).toBe(64);
    expect(JSON.parse(await readFile(join(empty, MESH_MEMORY_FILE), 'utf8')).port).toBe(7946);
  });
});
