/**
 * One view from anywhere, on loopback (the network-namespace version is
 * test/multihost.test.ts): an agent answers for another unit over the
 * encrypted mesh, lists the whole cluster, names unknown units, forwards
 * another unit's errors with their code; key operations reach every member
 * and each rewrites its own keyring file; an exposed agent without a keyring
 * refuses to start; status shows an --insecure agent.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Keyring } from '@rhizome/gossip';
import { Agent, connectToAgent } from '../../src/index';
import { summarizeStatus } from '../../src/cli/status/model';
import { renderStatus } from '../../src/cli/status/render';
import type { AgentStatus } from '../../src/unit/api';
import { until } from '@rhizome/test-support';

const CHARMS = join(import.meta.dirname, '../fixtures/charms');
const agents: Agent[] = [];
let base = '';

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  if (base) await rm(base, { recursive: true, force: true });
});

describe('remote control over the mesh (loopback)', () => {
  it('answers for other units, lists the cluster, rotates keys and persists them everywhere', async () => {
    base = await mkdtemp(join(tmpdir(), 'rz-remote-'));
    const key = Keyring.generateKey();
    const keyring = (n: number): string => join(base, `keyring-${n}`);
    for (const n of [0, 1, 2]) await writeFile(keyring(n), `${key}\n`, { mode: 0o600 });
    const start = async (n: number, seeds: string[]): Promise<Agent> => {
      const a = await Agent.start(
        { unit: `svc/${n}`, charmDir: join(CHARMS, 'counter-sender'), dataDir: join(base, `u${n}`), keyringFile: keyring(n), label: 'rhizome-rc', seeds },
        { fsync: false },
      );
      agents.push(a);
      return a;
    };
    const a = await start(0, []);
    const b = await start(1, [a.gossipAddress]);
    const c = await start(2, [a.gossipAddress]);
    await until('three members everywhere', () => [a, b, c].every((x) => x.members().filter((m) => m.status === 'alive').length === 3));

    // Another unit's facts and status, through a's control API (what the CLI does).
    const client = await connectToAgent(join(base, 'u0'));
    const facts = await client.forUnit('svc/2').get<Record<string, unknown>>('/facts');
    expect(facts).toEqual(c.facts());
    const st = await client.forUnit('svc/1').get<AgentStatus>('/status');
    expect(st).toMatchObject({ unit: 'svc/1', security: { encrypted: true, insecure: false, label: 'rhizome-rc' } });
    const cluster = await client.get<{ label: string; units: { unit: string; up: boolean }[] }>('/cluster/status');
    expect(cluster.label).toBe('rhizome-rc');
    expect(cluster.units.map((u) => [u.unit, u.up]).sort()).toEqual([['svc/0', true], ['svc/1', true], ['svc/2', true]]);
    // Errors: an unknown unit is a 404 naming it; a refusal on the far side keeps its code.
    await expect(client.forUnit('svc/9').get('/facts')).rejects.toMatchObject({ status: 404, message: expect.stringMatching(/svc\/9 is not in the mesh/) });
    await expect(client.forUnit('nonsense').get('/facts')).rejects.toMatchObject({ status: 400 });
    const resolve = await client.forUnit('svc/2').post('/resolve', {}).catch((e: unknown) => e);
    expect(resolve).toMatchObject({ status: 409, message: expect.stringMatching(/^svc\/2: /) });
    // Another unit's recent log lines, through a (one-shot; --follow polls the same way).
    const lines: { unit?: string }[] = [];
    for await (const r of client.forUnit('svc/1').stream<{ unit?: string }>('/logs', { query: { replay: '5', follow: 'false' } })) lines.push(r);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((r) => r.unit === 'svc/1')).toBe(true);
    // No control URL in the gossip tags.
    expect(JSON.stringify(a.members().map((m) => m.tags))).not.toMatch(/http:/);

    // Key rotation through the control API: every member answers, every keyring file is rewritten.
    const next = Keyring.generateKey();
    const install = await client.post<{ ok: boolean; members: number; responses: number }>('/keys', { operation: 'install', key: next });
    expect(install).toMatchObject({ ok: true, members: 3, responses: 3 });
    expect((await client.post<{ ok: boolean }>('/keys', { operation: 'use', key: next })).ok).toBe(true);
    expect((await client.post<{ ok: boolean }>('/keys', { operation: 'remove', key })).ok).toBe(true);
    for (const n of [0, 1, 2]) await until(`keyring ${n} rewritten`, async () => (await readFile(keyring(n), 'utf8')).trim() === next);
    await expect(client.post('/keys', { operation: 'burn' })).rejects.toMatchObject({ status: 400 });
    await until('still three members after rotation', () => [a, b, c].every((x) => x.members().filter((m) => m.status === 'alive').length === 3));
    expect((await client.forUnit('svc/2').get<Record<string, unknown>>('/facts'))).toEqual(c.facts());
  });

  it('an agent reachable from other machines without a keyring refuses to start; --insecure runs and status says so', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rz-insecure-'));
    try {
      const config = { unit: 'svc/7', charmDir: join(CHARMS, 'counter-sender'), dataDir: join(dir, 'u'), bind: '0.0.0.0', advertise: '127.0.0.1' };
      await expect(Agent.start(config, { fsync: false })).rejects.toMatchObject({ code: 'AGENT_ERR_INSECURE', message: expect.stringMatching(/rhizome keygen/) });
      const insecure = await Agent.start({ ...config, insecure: true }, { fsync: false });
      try {
        const s = insecure.status();
        expect(s.security).toMatchObject({ encrypted: false, insecure: true, profile: 'lan' });
        expect(s.address).toBe('127.0.0.1');
        expect(await readFile(join(dir, 'u', 'agent.log'), 'utf8')).toMatch(/INSECURE/);
        const text = await renderStatus(summarizeStatus({ units: [{ unit: s.unit, service: s.service, up: true, status: s }] }), { format: 'plain', now: new Date() });
        expect(text).toMatch(/insecure.*svc\/7.*unencrypted/);
      } finally {
        await insecure.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
