/**
 * Stop for a restart (`Agent.stop({ restart: true })`, SIGUSR2, what
 * `rhizome upgrade-model` does): the unit tells its peers, which hold back
 * its departed while the mesh has it failed; back in time, no relation
 * event fires for it at all; not back within its grace, it departs as any
 * failed unit.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { until } from '@rhizome/test-support';
import { Agent } from '../../src/index';

const CHARMS = join(import.meta.dirname, '../fixtures/charms');
const agents: Agent[] = [];
let base = '';

async function start(config: Record<string, unknown>, restartGraceMs?: number): Promise<Agent> {
  const a = await Agent.start(config, { fsync: false, absentGraceMs: 3_000, ...(restartGraceMs !== undefined ? { restartGraceMs } : {}) });
  agents.push(a);
  return a;
}

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});
afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

/** A sender and a receiver (whose restart grace is `graceMs`), related, one value applied. */
async function pair(graceMs?: number): Promise<{ s: Agent; r: Agent; receiver: Record<string, unknown> }> {
  base = base || (await mkdtemp(join(tmpdir(), 'rz-restart-')));
  const dir = await mkdtemp(join(base, 'pair-'));
  const s = await start({ unit: 'sender/0', charmDir: join(CHARMS, 'counter-sender'), dataDir: join(dir, 's0') });
  const receiver = { unit: 'receiver/0', charmDir: join(CHARMS, 'counter-witness'), dataDir: join(dir, 'r0'), seeds: [s.gossipAddress] };
  const r = await start(receiver, graceMs);
  await until('both see each other', () => s.members().length === 2 && r.members().length === 2);
  await r.directory.relate('receiver:feed', 'sender:feed');
  s.sendEvent('count', { value: 1 });
  await until('the receiver applied 1', () => (r.facts()['seen.sender-0'] as number[] | undefined)?.includes(1) === true, 30_000);
  return { s, r, receiver };
}

const departedOnSender = (s: Agent): readonly string[] => s.status().relations.find((x) => x.remoteService === 'receiver')?.departed ?? [];
const memberStatus = (s: Agent, name: string): string | undefined => s.members().find((m) => m.name === name)?.status;

describe('an agent stopped for a restart', () => {
  it('is held back from departing while the mesh has it failed, and comes back with no relation event', { timeout: 60_000 }, async () => {
    const { s, r, receiver } = await pair();
    const runsBefore = s.status().engine.runs;
    await r.stop({ restart: true });
    await until('the sender has receiver/0 failed', () => memberStatus(s, 'receiver/0') === 'failed', 30_000);
    expect(departedOnSender(s)).toEqual([]);
    const back = await start(receiver);
    await until('receiver/0 alive again on the sender', () => memberStatus(s, 'receiver/0') === 'alive', 30_000);
    await until('both converged', () => s.converged().ok && back.converged().ok, 30_000);
    expect(departedOnSender(s)).toEqual([]);
    expect(back.facts()['seen.sender-0']).toEqual([1]);
    // Nothing ran on the sender for the receiver's restart (no departed, no joined again).
    expect(s.status().engine.runs).toBe(runsBefore);
    s.sendEvent('count', { value: 2 });
    await until('the receiver applied 2, once', () => JSON.stringify(back.facts()['seen.sender-0']) === '[1,2]', 30_000);
  });

  it('departs once its grace is over when it does not come back', { timeout: 60_000 }, async () => {
    const { s, r } = await pair(1_000);
    await r.stop({ restart: true });
    await until('the sender ran departed for receiver/0', () => departedOnSender(s).includes('receiver/0'), 30_000);
  });
});
