import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import type { UnitContext } from '@rhizome/agent';
import { runRelationScenario } from '@rhizome/relations/testing';
import { greeting } from '@rhizome-charms/guide-greeter/greeting';
import listener from '../charm';

it('is blocked without a greeter, then writes what it heard with the playbook', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'listener-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const log = { info() {}, warn() {}, error() {}, debug() {} };
  const unit: UnitContext = { unit: 'listener/0', service: 'listener', dir, address: '127.0.0.1', config: {}, log };
  const handlers = listener.handlers(unit);
  const endpoints = {
    greeter: { side: greeting.requirer, relations: { 'rel-1': { remoteService: 'greeter', units: { 'greeter/0': {} } } } },
  };

  const started = await runRelationScenario({ handlers, unit: unit.unit, endpoints });
  expect(started.facts['workload.status']).toEqual({ state: 'blocked', message: 'waiting for a greeter' });
  expect(started.published('greeter')).toEqual({ name: 'listener/0' });

  const out = await runRelationScenario({
    handlers,
    unit: unit.unit,
    kb: started.kb,
    endpoints,
    event: { endpoint: 'greeter', name: 'changed', unit: 'greeter/0', data: { text: 'Hoi', from: 'greeter/0' } },
  });
  expect(out.error).toBeUndefined();
  expect(await readFile(join(dir, 'heard.txt'), 'utf8')).toBe('greeter/0 says "Hoi" to listener/0\n');
  expect(out.facts['listener.heard']).toBe(1);
  expect(out.facts['workload.status']).toEqual({ state: 'active', message: 'heard 1 greeting(s)' });
});
