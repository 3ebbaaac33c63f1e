/**
 * `rhizome upgrade-charm` restarts each unit in place (deploy/restart-stop.ts),
 * as upgrade-model does: on this machine, a sender feeds two witnesses
 * (test charm counter-witness, which records every relation message it
 * applies); the witness service moves onto counter-witness-v2. Each witness
 * is a new process running the new charm's handlers, with its facts as they
 * were; neither the sender nor the other witness saw it depart or join again
 * (the old way, a stop for good, showed as departed then joined); no
 * relation message was applied again, and the next one is applied once.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deploy, readDeployment, unitOf } from '@rhizome/agent';
import { until } from '@rhizome/test-support';
import { agentPackageRoot } from '../packages/agent/src/runtime';
import { useLocalHome, writeCounterBundle } from './local-home';

const NAME = 'upgc';
const FIXTURES = join(agentPackageRoot(), 'test/fixtures/charms');
const WITNESSES = ['witness/0', 'witness/1'];
const local = useLocalHome(NAME, 'rz-upgrade-charm-');
const { ok, facts } = local;
const seen = async (unit: string): Promise<number[]> => ((await facts(unit))['seen.sender-0'] as number[] | undefined) ?? [];
/** A unit's runs of a relation joining or departing, by event label. */
const churn = async (unit: string): Promise<string[]> =>
  (JSON.parse(await ok('runs', unit, '--json')) as { eventLabel: string }[]).map((r) => r.eventLabel).filter((l) => /joined|departed/.test(l));
const pids = async (): Promise<number[]> => {
  const d = await readDeployment(local.home, NAME);
  return WITNESSES.map((w) => unitOf(d, w).pid);
};

async function send(value: number): Promise<void> {
  await ok('event', 'count', JSON.stringify({ value }));
  for (const w of WITNESSES) await until(`${w} saw ${value}`, async () => (await seen(w)).includes(value), 30_000);
}

describe('rhizome upgrade-charm', () => {
  it('restarts each unit in place on the new charm: no departed or joined, state kept, nothing applied twice', { timeout: 120_000 }, async () => {
    const bundle = await writeCounterBundle(local, NAME, 2);
    await deploy(bundle, { home: local.home, timeoutMs: 60_000, noFsync: true });
    for (const v of [1, 2]) await send(v);
    // One at a time: the in-process CLI captures this process's stdout.
    const before: Record<string, Record<string, unknown>> = {};
    for (const w of WITNESSES) before[w] = await facts(w);
    const units = ['sender/0', ...WITNESSES];
    const churnOf = async (): Promise<string[][]> => {
      const all: string[][] = [];
      for (const u of units) all.push(await churn(u));
      return all;
    };
    const churnBefore = await churnOf();
    const pidsBefore = await pids();

    const t0 = Date.now();
    const out = await ok('upgrade-charm', 'witness', '--path', join(FIXTURES, 'counter-witness-v2'), '--timeout', '60');
    process.stderr.write(`upgrade-charm: 2 local units restarted on the new charm in ${Date.now() - t0} ms\n`);
    expect(out).toMatch(/^witness\/0: upgraded and converged in /m);
    expect(out).toMatch(/^witness\/1: upgraded and converged in /m);
    const pidsAfter = await pids();
    expect(pidsAfter.some((p, i) => p === pidsBefore[i])).toBe(false);
    for (const w of WITNESSES) {
      // The new charm's handler ran; what the old one recorded is as it was.
      const f = await facts(w);
      expect(f['charm.version']).toBe(2);
      const { 'charm.version': _v2, ...rest } = f;
      expect(rest).toEqual(before[w]);
    }
    // The sender saw no witness depart or join again, and the restarted witnesses ran no joined
    // (their relations were kept): no unit has a joined or departed run it did not have before.
    const churnAfter = await churnOf();
    expect(churnAfter[0]).toEqual(churnBefore[0]);
    for (const i of [1, 2]) expect(churnBefore[i]).toEqual(expect.arrayContaining(churnAfter[i]!));

    await send(3);
    for (const w of WITNESSES) {
      const f = await facts(w);
      expect(f['seen.sender-0']).toEqual([...(before[w]!['seen.sender-0'] as number[]), 3]);
      expect(f['changed.runs']).toBe((before[w]!['changed.runs'] as number) + 1);
    }
  });
});
