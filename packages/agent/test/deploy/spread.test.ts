/**
 * Units added without `--to` spread over the machines their service runs on
 * (placement.ts, leastLoadedMachine), also when several are added at once:
 * the choice is made under the record's lock, so concurrent add-units see
 * each other's. Two "local" machines stand for two hosts; the agents are
 * real processes (compiled: `pnpm build` first).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deploy, destroy, readDeployment } from '../../src/index';
import { addUnits } from '../../src/cli/commands/scale';
import { leastLoadedMachine } from '../../src/deploy/placement';
import type { Deployment } from '../../src/deploy/deployment';

const FIXTURES = join(import.meta.dirname, '../fixtures/charms');
let dir = '';

afterAll(async () => {
  if (dir) await destroy(join(dir, 'home'), { deployment: 'spread' }).catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** How many units of `service` each machine holds (no machine id: "here"). */
function perMachine(d: Deployment, service: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const u of Object.values(d.units)) if (u.service === service) counts[u.machine ?? 'here'] = (counts[u.machine ?? 'here'] ?? 0) + 1;
  return counts;
}

describe('leastLoadedMachine', () => {
  const unit = (service: string, machine?: string) => ({ service, ...(machine !== undefined ? { machine } : {}) });
  const deployment = (...units: ReturnType<typeof unit>[]) => ({ units: Object.fromEntries(units.map((u, i) => [`${u.service}/${i}`, u])) }) as unknown as Deployment;

  it("picks the machine with the fewest of the service's units, the first on a tie", () => {
    expect(leastLoadedMachine(deployment(unit('dn', '2'), unit('dn', '3'), unit('dn', '2')), 'dn')).toBe('3');
    expect(leastLoadedMachine(deployment(unit('dn', '3'), unit('dn', '2')), 'dn')).toBe('3');
  });

  it("counts only the service's own units and never a machine it has none on", () => {
    expect(leastLoadedMachine(deployment(unit('nn', '1'), unit('dn', '2'), unit('dn', '2'), unit('nn', '3')), 'dn')).toBe('2');
  });

  it('treats this machine (no machine id) as one place among the others', () => {
    expect(leastLoadedMachine(deployment(unit('web'), unit('web', '1'), unit('web', '1')), 'web')).toBeUndefined();
    expect(leastLoadedMachine(deployment(unit('web'), unit('web')), 'web')).toBeUndefined();
  });
});

describe('add-unit without --to', () => {
  it("spreads units added at once over the service's machines", { timeout: 120_000 }, async () => {
    dir = await mkdtemp(join(tmpdir(), 'rz-spread-'));
    const home = join(dir, 'home');
    const bundle = join(dir, 'bundle.yaml');
    await writeFile(bundle, `name: spread\nmachines: { "0": local, "1": local, "2": local }\nservices:\n  kv: { charm: ${join(FIXTURES, 'kv')}, to: [0, 1] }\n`);
    await deploy(bundle, { home, noFsync: true, timeoutMs: 60_000, charmCache: join(dir, 'cache') });
    expect(perMachine(await readDeployment(home, 'spread'), 'kv')).toEqual({ '0': 1, '1': 1 });

    // Before the fix every one of these went beside kv/0, on machine 0; machine 2 runs no kv and stays empty.
    const added = await addUnits(home, 'kv', 4, { deployment: 'spread', noFsync: true });
    expect(added).toHaveLength(4);
    expect(perMachine(await readDeployment(home, 'spread'), 'kv')).toEqual({ '0': 3, '1': 3 });
  });
});
