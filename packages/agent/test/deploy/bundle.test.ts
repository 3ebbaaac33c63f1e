import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkBundle, parseBundle, readBundle } from '../../src/deploy/bundle';

const FIXTURES = join(import.meta.dirname, '../fixtures');
const file = join(FIXTURES, 'bundles/test.yaml');

const bundle = (relations = '[[sender:feed, receiver:feed]]', extra = ''): string => `
name: demo
services:
  sender: { charm: ../charms/counter-sender, units: 1 }
  receiver: { charm: ../charms/counter-receiver, units: 2, options: { a: 1 } }
relations: ${relations}
${extra}`;

describe('bundles', () => {
  it('parses a bundle with charm paths relative to the bundle file', async () => {
    const b = parseBundle(bundle(), file);
    expect(b.name).toBe('demo');
    expect(b.services['receiver']).toEqual({ name: 'receiver', charmDir: join(FIXTURES, 'charms/counter-receiver'), units: 2, options: { a: 1 } });
    expect(b.relations).toEqual([['sender:feed', 'receiver:feed']]);
    const meta = await checkBundle(b);
    expect(Object.keys(meta.sender!.endpoints)).toContain('feed');
  });

  it.each([
    ['not YAML', 'name: [oops', /is not valid YAML/],
    ['no name', 'services: { a: { charm: x } }', /name: /],
    ['bad name', 'name: Bad Name\nservices: { a: { charm: x } }', /name: a deployment name is lowercase/],
    ['no services', 'name: x\nservices: {}', /services: a bundle needs at least one service/],
    ['bad units', 'name: x\nservices: { a: { charm: x, units: -1 } }', /services\.a\.units/],
    ['unknown field', 'name: x\nservices: { a: { charm: x, unit: 2 } }', /services\.a: .*unit/],
    ['bad relation', bundle('[[sender, receiver:feed]]'), /relations\.0\.0: an endpoint is SERVICE:ENDPOINT/],
    ['relation to unknown service', bundle('[[ghost:feed, receiver:feed]]'), /relations\.0\.0: service "ghost" is not in services/],
  ])('refuses a bundle with %s, naming the field', (_what, text, message) => {
    expect(() => parseBundle(text, file)).toThrow(message);
    try {
      parseBundle(text, file);
    } catch (err) {
      expect(err).toMatchObject({ code: 'AGENT_ERR_BAD_BUNDLE' });
    }
  });

  it('refuses an unknown charm folder, an unknown endpoint and incompatible endpoints', async () => {
    await expect(checkBundle(parseBundle('name: x\nservices: { a: { charm: ../charms/nope } }', file))).rejects.toThrow(/services\.a\.charm: cannot load charm .*nope\/charm\.ts/);
    await expect(checkBundle(parseBundle(bundle('[[sender:feed, receiver:nope]]'), file))).rejects.toThrow(/relations\.0: charm "counter-receiver" has no endpoint "nope"/);
    await expect(checkBundle(parseBundle(bundle('[[sender:feed, sender:ring]]'), file))).rejects.toThrow(/relations\.0: cannot relate/);
  });

  it('names every problem at once, one per line, not one per deploy attempt', async () => {
    const placed = `
name: demo
machines: { "0": local }
services:
  sender: { charm: ../charms/counter-sender, units: 2, to: [0] }
  receiver: { charm: ../charms/counter-receiver, to: [7] }
relations: [[sender:feed, nosuch:feed]]
`;
    expect(() => parseBundle(placed, file)).toThrow(
      `${file} has 3 problems:\n  services.sender.to: names 1 machine(s) for 2 unit(s); give one machine per unit (or leave out units)\n` +
        `  services.receiver.to.0: machine "7" is not in machines (0)\n  relations.0.1: service "nosuch" is not in services (sender, receiver)`,
    );
    const charms = `
name: demo
services:
  sender: { charm: ../charms/counter-sender }
  receiver: { charm: ../charms/counter-receiver }
  lost: { charm: ../charms/nope }
relations: [[sender:feed, receiver:nope], [lost:x, sender:feed], [sender:feed, receiver:feed]]
`;
    const err = (await checkBundle(parseBundle(charms, file)).catch((e: unknown) => e)) as Error & { code?: string };
    expect(err.code).toBe('AGENT_ERR_BAD_BUNDLE');
    const lines = err.message.split('\n');
    expect(lines[0]).toBe(`${file} has 2 problems:`);
    expect(lines[1]).toMatch(/^ {2}services\.lost\.charm: cannot load charm .*nope/);
    // The relation of the charm that did not load is checked once it loads; the good one passes.
    expect(lines[2]).toMatch(/^ {2}relations\.0: charm "counter-receiver" has no endpoint "nope"/);
    expect(lines).toHaveLength(3);
  });

  it('takes a dashboard per service, refusing a bad one and a fixed port two units would share', () => {
    const with_ = (units: number, dashboard: string) => `name: d\nservices:\n  a: { charm: ../charms/counter-sender, units: ${units}, dashboard: ${dashboard} }\n`;
    expect(parseBundle(with_(1, '8080'), file).services['a']!.dashboard).toBe(8080);
    expect(parseBundle(with_(2, '0'), file).services['a']!.dashboard).toBe(0);
    expect(() => parseBundle(with_(2, '8080'), file)).toThrow(/services\.a\.dashboard: units of a share a machine and cannot all serve port 8080; use 0/);
    expect(() => parseBundle(with_(1, 'localhost'), file)).toThrow(/services\.a\.dashboard: dashboard "localhost" names no port/);
    expect(() => parseBundle(with_(1, '70000'), file)).toThrow(/services\.a\.dashboard: /);
  });

  it('reports a missing bundle file', async () => {
    await expect(readBundle(join(FIXTURES, 'bundles/missing.yaml'))).rejects.toThrow(/cannot read bundle .*missing\.yaml/);
  });

  describe('machines and placement (Juju shape)', () => {
    const placed = (machines: string, to: string): string => `
name: demo
machines:
${machines}
services:
  sender: { charm: ../charms/counter-sender, to: ${to} }
`;

    it('places units on machines; units defaults to the length of to; dir defaults', () => {
      const b = parseBundle(placed('  "0": local\n  "1": { ssh: "ssh:ubuntu@10.0.0.5:2222", dir: /srv/rz }\n  "2": { ssh: root@host-2 }', '[1, 2, 1]'), file);
      expect(b.services['sender']!.units).toBe(3);
      expect(b.services['sender']!.to).toEqual(['1', '2', '1']);
      expect(b.machines).toEqual({ '0': { id: '0', local: true }, '1': { id: '1', ssh: 'ubuntu@10.0.0.5:2222', dir: '/srv/rz' }, '2': { id: '2', ssh: 'root@host-2', dir: '/var/lib/rhizome' } });
    });

    it.each([
      ['an unknown machine', '  "0": local', '[0, 3]', /services\.sender\.to\.1: machine "3" is not in machines \(0\)/],
      ['a bad ssh destination', '  "0": { ssh: "root@bad host" }', '[0]', /machines\.0\.ssh: "root@bad host" is not an SSH destination/],
      ['a relative dir', '  "0": { ssh: root@h, dir: rel/dir }', '[0]', /machines\.0\.dir: dir is an absolute path/],
      ['a bad machine id', '  x: local', '[x]', /machines\.x: a machine id is a number/],
    ])('refuses %s', (_what, machines, to, message) => {
      expect(() => parseBundle(placed(machines, to), file)).toThrow(message);
    });

    it('refuses a to: whose length differs from units', () => {
      expect(() => parseBundle(placed('  "0": local', '[0]').replace('to: [0]', 'to: [0], units: 2'), file)).toThrow(/names 1 machine\(s\) for 2 unit\(s\)/);
    });
  });
});
