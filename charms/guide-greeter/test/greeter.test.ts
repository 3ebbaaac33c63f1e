import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import type { UnitContext } from '@rhizome/agent';
import { runRelationScenario } from '@rhizome/relations/testing';
import greeter from '../charm';
import { greeting } from '../src/greeting';

async function unit(config: Record<string, string>): Promise<UnitContext> {
  const dir = await mkdtemp(join(tmpdir(), 'greeter-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const log = { info() {}, warn() {}, error() {}, debug() {} };
  return { unit: 'greeter/0', service: 'greeter', dir, address: '127.0.0.1', config, log };
}

it('writes its greeting at start', async () => {
  const u = await unit({ text: 'Hoi' });
  const out = await runRelationScenario({ handlers: greeter.handlers(u), unit: u.unit });
  expect(await readFile(join(u.dir, 'greeting.txt'), 'utf8')).toBe('Hoi\n');
  expect(out.facts['workload.status']).toEqual({ state: 'active', message: 'says "Hoi"' });
});

it('greets a listener that joins, and counts the ones that answered', async () => {
  const u = await unit({ text: 'Hoi' });
  const handlers = greeter.handlers(u);
  const endpoints = {
    listeners: { side: greeting.provider, relations: { 'rel-1': { remoteService: 'listener', units: { 'listener/0': {} } } } },
  };
  const started = await runRelationScenario({ handlers, unit: u.unit, endpoints });
  expect(started.published('listeners')).toEqual({ text: 'Hoi', from: 'greeter/0' });

  const out = await runRelationScenario({
    handlers,
    unit: u.unit,
    kb: started.kb,
    endpoints,
    event: { endpoint: 'listeners', name: 'changed', unit: 'listener/0', data: { name: 'ada' } },
  });
  expect(out.facts['greeter.audience']).toEqual(['ada']);
  // Both read the relation, which changed; publishing the same data again is not a change.
  expect(out.report.steps.map((s) => s.handler)).toEqual(['greet-listeners', 'count-listeners']);
  expect(out.published('listeners')).toEqual({ text: 'Hoi', from: 'greeter/0' });
});

it('keeps bad data from a listener away from the handlers', async () => {
  const u = await unit({ text: 'Hoi' });
  const handlers = greeter.handlers(u);
  const endpoints = {
    listeners: { side: greeting.provider, relations: { 'rel-1': { remoteService: 'listener', units: { 'listener/0': {} } } } },
  };
  const started = await runRelationScenario({ handlers, unit: u.unit, endpoints });
  const out = await runRelationScenario({
    handlers,
    unit: u.unit,
    kb: started.kb,
    endpoints,
    event: { endpoint: 'listeners', name: 'changed', unit: 'listener/0', data: { name: '' } },
  });
  expect(out.facts['greeter.audience']).toBeUndefined();
  expect(out.state('listeners')?.relations['rel-1']?.units['listener/0']).toMatchObject({ status: 'invalid', invalidKeys: ['name'] });
});

it('greets by name with its action, the parameters checked by the schema first', async () => {
  const u = await unit({ text: 'Hoi' });
  const greet = greeter.actions!['greet']!;
  expect(greet.params!.safeParse({ name: '' }).success).toBe(false);
  const checked = greet.params!.safeParse({ name: 'ada', times: 2 });
  expect(checked).toMatchObject({ success: true, data: { name: 'ada', times: 2 } });
  const data = (checked as { data: { name: string; times: number } }).data;
  expect(await greet.run({} as never, data, u)).toEqual({ said: 'Hoi, ada! Hoi, ada!' });
  expect(greet.params!.safeParse({ name: 'bob' })).toMatchObject({ data: { times: 1 } });
});
