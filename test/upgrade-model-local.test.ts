/**
 * `rhizome upgrade-model` on this machine: a sender and a witness (test
 * charm counter-witness, which records every relation message it applies)
 * as local agent processes started by this repository's release; another
 * installed release's CLI moves both onto it: new processes reporting its
 * version, the same facts, no relation message applied again, the next one
 * applied once, and the witness's peers never saw it depart.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deploy, readDeployment, unitOf } from '@rhizome/agent';
import { until } from '@rhizome/test-support';
import type { StatusSummary } from '../packages/agent/src/cli/status/model';
import type { UpgradeReport } from '../packages/agent/src/deploy/upgrade-agents';
import { agentVersion } from '../packages/agent/src/runtime';
import { installRelease, runRelease } from './installed-release';
import { useLocalHome, writeCounterBundle } from './local-home';

const NAME = 'upgl';
const local = useLocalHome(NAME, 'rz-upgrade-local-');
const { ok, facts } = local;
const seen = async (): Promise<number[]> => ((await facts('witness/0'))['seen.sender-0'] as number[] | undefined) ?? [];

async function send(value: number): Promise<void> {
  await ok('event', 'count', JSON.stringify({ value }));
  await until(`the witness saw ${value}`, async () => (await seen()).includes(value), 30_000);
}

describe('rhizome upgrade-model on this machine', () => {
  it('restarts each local agent on the installed release, state kept, nothing applied twice', { timeout: 120_000 }, async () => {
    const bundle = await writeCounterBundle(local, NAME, 1);
    await deploy(bundle, { home: local.home, timeoutMs: 60_000, noFsync: true });
    for (const v of [1, 2]) await send(v);
    const before = await facts('witness/0');
    const d0 = await readDeployment(local.home, NAME);
    const pids = [unitOf(d0, 'sender/0').pid, unitOf(d0, 'witness/0').pid];

    const b = `${agentVersion()}-local.1`;
    const cli = await installRelease(join(local.root, 'release-b'), b);
    const t0 = Date.now();
    const up = await runRelease(cli, local.home, 'upgrade-model', '--no-fsync', '--timeout', '60', '--json');
    expect(up.code, up.stderr).toBe(0);
    const report = JSON.parse(up.stdout) as UpgradeReport;
    process.stderr.write(`upgrade-model: 2 local units moved onto ${b} in ${Date.now() - t0} ms\n`);
    expect(report.units.map((u) => [u.unit, u.from, u.now, u.outcome])).toEqual([
      ['sender/0', agentVersion(), b, 'upgraded'],
      ['witness/0', agentVersion(), b, 'upgraded'],
    ]);
    const d1 = await readDeployment(local.home, NAME);
    expect([unitOf(d1, 'sender/0').pid, unitOf(d1, 'witness/0').pid].some((p, i) => p === pids[i])).toBe(false);
    const status = JSON.parse(await ok('status', '--json')) as StatusSummary;
    expect(status.units.map((u) => [u.unit, u.version])).toEqual([['sender/0', b], ['witness/0', b]]);
    expect(await facts('witness/0')).toEqual(before);
    // The sender saw no departed of the witness (it restarted, it did not leave).
    const runs = JSON.parse(await ok('runs', 'sender/0', '--json')) as { event?: string }[];
    expect(JSON.stringify(runs)).not.toMatch(/departed/);
    await send(3);
    expect(await seen()).toEqual([...(before['seen.sender-0'] as number[]), 3]);
    expect((await facts('witness/0'))['changed.runs']).toBe((before['changed.runs'] as number) + 1);
  });
});
