import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkBundle, parseBundle, readBundle } from '../../src/index';

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

  it('reports a missing bundle file', async () => {
    await expect(readBundle(join(FIXTURES, 'bundles/missing.yaml'))).rejects.toThrow(/cannot read bundle .*missing\.yaml/);
  });
});
