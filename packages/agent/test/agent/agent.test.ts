import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Keyring, MAX_PAYLOAD_DEPTH } from '@rhizome/gossip';
import { Agent, ControlClient, loadAgentConfig } from '../../src/index';
import { readToken } from '../../src/control/token-file';
import type { AgentStatus } from '../../src/index';
import { until } from '@rhizome/test-support';

const CHARMS = join(import.meta.dirname, '../fixtures/charms');
const agents: Agent[] = [];
const dirs: string[] = [];

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'rz-agent-'));
  dirs.push(d);
  return d;
}

async function start(config: Record<string, unknown>): Promise<Agent> {
  const a = await Agent.start(config, { fsync: false, absentGraceMs: 3_000, retry: { limit: 2, baseMs: 50, maxMs: 100 } });
  agents.push(a);
  return a;
}

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('Agent (several in one process)', () => {
  it('relates two services over the mesh, delivers every published value once, and reports departed when a unit leaves', async () => {
    const base = await tmp();
    const s = await start({ unit: 'sender/0', charmDir: join(CHARMS, 'counter-sender'), dataDir: join(base, 's0') });
    const r = await start({ unit: 'receiver/0', charmDir: join(CHARMS, 'counter-receiver'), dataDir: join(base, 'r0'), seeds: [s.gossipAddress] });
    await until('both see each other', () => s.members().length === 2 && r.members().length === 2);
    await expect(r.directory.relate('sender:nope', 'receiver:feed')).rejects.toThrow(/no endpoint "nope"/);
    await expect(r.directory.relate('sender:feed', 'ghost:feed')).rejects.toThrow(/no unit of service "ghost"/);
    const decl = await r.directory.relate('receiver:feed', 'sender:feed');
    expect(decl.id).toBe('receiver:feed~sender:feed');
    // the declaration reached the sender through the mesh
    await until('sender knows the relation', () => s.directory.active().some((d) => d.id === decl.id));
    // relating again, from either side and in either order, changes nothing and says so
    const again = await s.directory.relate('sender:feed', 'receiver:feed');
    expect(again).toMatchObject({ id: decl.id, stamp: decl.stamp, origin: 'receiver/0', already: true });
    expect(s.directory.active()).toHaveLength(1);
    for (let v = 1; v <= 5; v++) s.sendEvent('count', { value: v });
    await until('receiver applied 5', () => r.facts()['last.sender-0'] === 5);
    await until('both converged', () => s.converged().ok && r.converged().ok);
    const applied = r.facts()['applied.sender-0'] as number[];
    expect(applied.at(-1)).toBe(5);
    expect(new Set(applied).size).toBe(applied.length);
    expect([...applied].sort((x, y) => x - y)).toEqual(applied);
    const status = r.status();
    expect(status.workload).toEqual({ state: 'active', message: 'receiving from 1 unit(s)' });

    // the same through the control API
    const api = new ControlClient({ url: r.controlUrl, token: await readToken(join(base, 'r0')) });
    expect((await api.get<{ name: string }[]>('/members')).map((m) => m.name).sort()).toEqual(['receiver/0', 'sender/0']);
    expect((await api.get<{ declarations: { id: string }[] }>('/relations')).declarations.map((d) => d.id)).toEqual([decl.id]);
    const runs = await api.get<{ runId: string; eventLabel: string; outcome: string }[]>('/runs');
    expect(runs.some((x) => x.eventLabel === 'feed.changed(sender/0)' && x.outcome === 'committed')).toBe(true);
    expect((await api.get<{ ok: boolean }>('/converged')).ok).toBe(true);
    const q = await api.json<{ responses: { from: string; payload: { unit: string } }[] }>('POST', '/query', { name: 'who', timeoutMs: 1500 });
    expect(q.responses.map((x) => x.payload.unit).sort()).toEqual(['receiver/0', 'sender/0']);
    const lines: { runId?: string; msg?: string }[] = [];
    for await (const line of api.stream<{ runId?: string; msg?: string }>('/logs', { query: { follow: 'false', run: runs.at(-1)!.runId } })) lines.push(line);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l) => l.runId === runs.at(-1)!.runId)).toBe(true);
    await expect(api.json('POST', '/relate', { a: 'sender', b: 'receiver:feed' })).rejects.toMatchObject({ status: 400 });
    expect(status.relations[0]!.units.map((u) => u.unit)).toEqual(['sender/0']);

    // a third unit joins late and learns the relation from its peers (user events are not replayed)
    const r1 = await start({ unit: 'receiver/1', charmDir: join(CHARMS, 'counter-receiver'), dataDir: join(base, 'r1'), seeds: [s.gossipAddress] });
    await until('late joiner learns the relation and the value', () => r1.facts()['last.sender-0'] === 5);

    // graceful stop: the mesh says left -> departed on the sender's relation
    await r1.stop();
    await until('sender sees receiver/1 departed', () => s.status().relations.find((x) => x.id === decl.id)?.departed.includes('receiver/1'));

    // unrelate: every unit of both services sees broken
    await s.directory.unrelate('sender:feed', 'receiver:feed');
    await until('receiver saw broken', () => r.facts()['broken'] === true);
    expect(r.status().relations).toEqual([]);
  });

  it('a charm that throws puts the unit in error with the handler and message; resolve --skip recovers', async () => {
    const base = await tmp();
    const a = await start({ unit: 'faulty/0', charmDir: join(CHARMS, 'faulty'), dataDir: base });
    const client = new ControlClient({ url: a.controlUrl, token: await readToken(base) });
    await client.json('POST', '/event', { name: 'explode' });
    const st = await until('error state', async () => {
      const s = await client.get<AgentStatus>('/status');
      return s.engine.state === 'error' ? s : undefined;
    });
    expect(st.engine.error?.handler).toBe('explode');
    expect(st.engine.error?.message).toMatch(/boom: the workload refused to start/);
    expect(a.converged().ok).toBe(false);
    // resolve retries the same failing handler: error again
    await client.json('POST', '/resolve', {});
    await until('error again after retrying', async () => (await client.get<AgentStatus>('/status')).engine.state === 'error');
    await client.json('POST', '/resolve', { skip: true });
    await client.json('POST', '/event', { name: 'calm' });
    await until('calm after skip', () => a.facts()['calm'] === true);
    expect(a.status().engine.state).toBe('idle');
    // bad bodies and no token
    await expect(client.json('POST', '/resolve', { skip: 'yes' })).rejects.toMatchObject({ status: 400 });
    await expect(client.json('POST', '/event', { nme: 'x' })).rejects.toMatchObject({ status: 400 });
    const res = await fetch(`${a.controlUrl}/status`);
    expect(res.status).toBe(401);
    const wrong = await fetch(`${a.controlUrl}/facts`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
  });

  it('status warns about a precondition on a fact no run has set once start-up settled; declared facts refuse it at start', async () => {
    const base = await tmp();
    const a = await start({ unit: 'misspelled/0', charmDir: join(CHARMS, 'misspelled'), dataDir: base });
    const st = await until('a charm warning', () => a.status().warnings);
    expect(st).toEqual([expect.stringMatching(/handler configure waits on fact 'kafka.instaled', which no run has ever set/)]);
    await expect(start({ unit: 'declared-typo/0', charmDir: join(CHARMS, 'declared-typo'), dataDir: await tmp() })).rejects.toThrow(/handler "configure" waits on fact "kafka.instaled", which is not declared/);
  });

  it('refuses event and query payloads beyond the wire limits with 400 naming the limit', async () => {
    const base = await tmp();
    const a = await start({ unit: 'faulty/0', charmDir: join(CHARMS, 'faulty'), dataDir: base });
    const client = new ControlClient({ url: a.controlUrl, token: await readToken(base) });
    const nest = (n: number): unknown => {
      let v: unknown = 'x';
      for (let i = 0; i < n; i++) v = { v };
      return v;
    };
    for (const depth of [MAX_PAYLOAD_DEPTH + 1, 100]) {
      for (const route of ['/event', '/query']) {
        const err = await client.json('POST', route, { name: 'deep', payload: nest(depth) }).catch((e: unknown) => e);
        expect(err).toMatchObject({ status: 400 });
        expect(String((err as Error).message)).toMatch(new RegExp(`deeper than (${MAX_PAYLOAD_DEPTH}|64)`));
      }
    }
    // 5,000 deep used to overflow the stack (500): built as text, since the client's own JSON.stringify may not cope.
    const token = await readToken(base);
    const deepText = `{"name":"deep","payload":${'{"v":'.repeat(5_000)}"x"${'}'.repeat(5_000)}}`;
    const deepRes = await fetch(`${a.controlUrl}/event`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: deepText });
    expect(deepRes.status).toBe(400);
    const big = await client.json('POST', '/event', { name: 'big', payload: 'x'.repeat(20_000) }).catch((e: unknown) => e);
    expect(big).toMatchObject({ status: 400 });
    expect(String((big as Error).message)).toMatch(/userEventSizeLimit/);
    const bigQ = await client.json('POST', '/query', { name: 'big', payload: 'x'.repeat(20_000) }).catch((e: unknown) => e);
    expect(bigQ).toMatchObject({ status: 400 });
    expect(String((bigQ as Error).message)).toMatch(/querySizeLimit/);
    // The deepest allowed payload is accepted, and the agent still works.
    await client.json('POST', '/event', { name: 'calm', payload: nest(MAX_PAYLOAD_DEPTH) });
    await until('calm applied', () => a.facts()['calm'] === true);
  });

  it('raises file.changed with the path when a watched file changes', async () => {
    const base = await tmp();
    const a = await Agent.start({ unit: 'faulty/0', charmDir: join(CHARMS, 'faulty'), dataDir: base }, { fsync: false, watchDebounceMs: 50 });
    agents.push(a);
    await writeFile(join(a.unitDir, 'watched.conf'), 'x=1\n');
    await until('file.seen', () => a.facts()['file.seen'] === join(a.unitDir, 'watched.conf'));
  });

  it('restarts from its data directory with its facts and relations', async () => {
    const base = await tmp();
    const s = await start({ unit: 'sender/0', charmDir: join(CHARMS, 'counter-sender'), dataDir: join(base, 's0') });
    let r = await start({ unit: 'receiver/0', charmDir: join(CHARMS, 'counter-receiver'), dataDir: join(base, 'r0'), seeds: [s.gossipAddress], snapshotEvery: 3 });
    await until('members', () => r.members().length === 2);
    await r.directory.relate('sender:feed', 'receiver:feed');
    for (let v = 1; v <= 4; v++) s.sendEvent('count', { value: v });
    await until('4 applied', () => r.facts()['last.sender-0'] === 4);
    const before = r.facts();
    await r.stop();
    agents.splice(agents.indexOf(r), 1);
    r = await start({ unit: 'receiver/0', charmDir: join(CHARMS, 'counter-receiver'), dataDir: join(base, 'r0'), seeds: [s.gossipAddress], snapshotEvery: 3 });
    expect(r.facts()['applied.sender-0']).toEqual(before['applied.sender-0']);
    s.sendEvent('count', { value: 5 });
    await until('5 applied after restart', () => r.facts()['last.sender-0'] === 5);
    const applied = r.facts()['applied.sender-0'] as number[];
    expect(new Set(applied).size).toBe(applied.length);
  });

  it('refuses a second agent on the same data directory', async () => {
    const base = await tmp();
    await start({ unit: 'faulty/0', charmDir: join(CHARMS, 'faulty'), dataDir: base });
    await expect(start({ unit: 'faulty/1', charmDir: join(CHARMS, 'faulty'), dataDir: base })).rejects.toMatchObject({ code: 'AGENT_ERR_STORE_LOCKED' });
  });

  it.each([
    ['broken-syntax', /cannot load charm .*broken-syntax\/charm\.ts: the module failed to load/],
    ['no-preconditions', /cannot load charm .*no-preconditions\/charm\.ts: .*"lonely" has no preconditions/],
    ['bad-metadata', /cannot load charm .*bad-metadata\/charm\.ts: invalid charm metadata/],
    ['does-not-exist', /cannot load charm .*does-not-exist\/charm\.ts: no charm\.ts/],
  ])('stops start-up with a clear error for charm %s', async (charm, message) => {
    const base = await tmp();
    const err = await Agent.start({ unit: 'x/0', charmDir: join(CHARMS, charm), dataDir: base }, { fsync: false }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'AGENT_ERR_CHARM_LOAD' });
    expect((err as Error).message).toMatch(message);
    // the data directory was unlocked again: a good charm can start there
    const ok = await start({ unit: 'x/0', charmDir: join(CHARMS, 'faulty'), dataDir: base });
    expect(ok.unit).toBe('x/0');
  });

  it('rejects a bad configuration naming the field', async () => {
    await expect(Agent.start({ unit: 'Web', charmDir: 'x', dataDir: 'y' })).rejects.toThrow(/unit: a unit name looks like "service\/0"/);
    await expect(Agent.start({ unit: 'web/0', charmDir: 'x', dataDir: 'y', seeds: ['nope'] })).rejects.toThrow(/seeds\.0: a seed is host:port/);
  });

  it('relates the units of a service among themselves on a peers endpoint, without any relate', async () => {
    const base = await tmp();
    const a = await start({ unit: 'sender/0', charmDir: join(CHARMS, 'counter-sender'), dataDir: join(base, 'a') });
    const b = await start({ unit: 'sender/1', charmDir: join(CHARMS, 'counter-sender'), dataDir: join(base, 'b'), seeds: [a.gossipAddress] });
    await until('peers joined', () => {
      const ra = a.status().relations.find((r) => r.peer);
      const rb = b.status().relations.find((r) => r.peer);
      return ra?.units.map((u) => u.unit).join() === 'sender/1' && rb?.units.map((u) => u.unit).join() === 'sender/0';
    });
  });

  it('encrypts gossip with a keyring file; an agent without the key cannot join', async () => {
    const base = await tmp();
    const keys = join(base, 'keys');
    await writeFile(keys, `# gossip keys\n${Keyring.generateKey()}\n`);
    const a = await start({ unit: 'faulty/0', charmDir: join(CHARMS, 'faulty'), dataDir: join(base, 'a'), keyringFile: keys });
    const b = await start({ unit: 'faulty/1', charmDir: join(CHARMS, 'faulty'), dataDir: join(base, 'b'), keyringFile: keys, seeds: [a.gossipAddress] });
    await until('keyed members', () => a.members().length === 2 && b.members().length === 2);
    const refusedBefore = a.node.stats().dropped.plaintextRefused;
    const c = await start({ unit: 'faulty/2', charmDir: join(CHARMS, 'faulty'), dataDir: join(base, 'c'), seeds: [a.gossipAddress] });
    // c's join reached a and was refused (it speaks plaintext), not merely not yet answered.
    await until("a refusing c's plaintext frames", () => a.node.stats().dropped.plaintextRefused > refusedBefore);
    expect(a.members().map((m) => m.name)).not.toContain('faulty/2');
    expect(c.members().map((m) => m.name)).toEqual(['faulty/2']);
    await writeFile(join(base, 'empty'), '\n');
    await expect(start({ unit: 'faulty/3', charmDir: join(CHARMS, 'faulty'), dataDir: join(base, 'd'), keyringFile: join(base, 'empty') })).rejects.toThrow(/holds no key/);
  });

  it('reads a YAML config file with paths relative to it; flags win', async () => {
    const base = await tmp();
    await writeFile(join(base, 'agent.yaml'), `unit: faulty/4\ncharmDir: ${join(CHARMS, 'faulty')}\ndataDir: ./data\nlogLevel: debug\noptions: { size: 3 }\n`);
    const c = await loadAgentConfig(join(base, 'agent.yaml'), { logLevel: 'warn', unit: undefined });
    expect(c).toMatchObject({ unit: 'faulty/4', service: 'faulty', dataDir: join(base, 'data'), logLevel: 'warn', options: { size: 3 } });
    await writeFile(join(base, 'bad.yaml'), 'unit: faulty/4\ncharmDir: x\ndataDir: y\nbogus: 1\n');
    await expect(loadAgentConfig(join(base, 'bad.yaml'))).rejects.toThrow(/invalid agent configuration: .*bogus/);
  });

  it('refuses to start on a corrupt state log with the file named, keeps the bytes, and starts once it is repaired', async () => {
    const base = await tmp();
    const cfg = { unit: 'faulty/0', charmDir: join(CHARMS, 'faulty'), dataDir: base };
    const a = await start(cfg);
    const client = new ControlClient({ url: a.controlUrl, token: await readToken(base) });
    await client.json('POST', '/event', { name: 'calm' });
    await until('calm', () => a.facts()['calm'] === true);
    await a.stop();
    agents.splice(agents.indexOf(a), 1);
    const stateDir = join(base, 'state');
    const log = join(stateDir, (await readdir(stateDir)).find((f) => f.endsWith('.rlog'))!);
    const good = await readFile(log);
    const bad = Buffer.from(good);
    bad[10] = bad[10]! ^ 0xff; // inside the first record, whose header is intact
    await writeFile(log, bad);
    const err = await Agent.start(cfg, { fsync: false }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'AGENT_ERR_STORE_CORRUPT' });
    expect((err as Error).message).toContain(log);
    expect(await readFile(log)).toEqual(bad);
    await writeFile(log, good);
    const b = await start(cfg);
    expect(b.facts()['calm']).toBe(true);
  });

  it('records the charm config as the fact `config` and runs config.changed when it changes', async () => {
    const base = await tmp();
    const cfg = { unit: 'faulty/0', charmDir: join(CHARMS, 'faulty'), dataDir: base, options: { size: 1 } };
    let a = await start(cfg);
    // The faulty charm's defaults (greeting, retries) merged with the options.
    await until('config fact', () => JSON.stringify(a.facts()['config']) === JSON.stringify({ greeting: 'hello', retries: 3, size: 1 }));
    const runsBefore = a.runs().filter((r) => r.eventLabel === 'config.changed').length;
    expect(runsBefore).toBe(1);
    await a.stop();
    agents.splice(agents.indexOf(a), 1);
    a = await start(cfg); // same config: no config.changed
    await a.engine.whenIdle();
    expect(a.runs().filter((r) => r.eventLabel === 'config.changed')).toHaveLength(0);
    await a.stop();
    agents.splice(agents.indexOf(a), 1);
    a = await start({ ...cfg, options: { size: 2 } });
    await until('new config', () => JSON.stringify(a.facts()['config']) === JSON.stringify({ greeting: 'hello', retries: 3, size: 2 }));
  });
});
