import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseCharmMetadata } from '@rhizome/relations';
import type { Member } from '@rhizome/gossip';
import { parseEndpointRef, relationIdOf } from '../../src/mesh/relation-directory';
import { compareDeclarations, type Declaration } from '../../src/state/durable-state';
import { agentTags, metadataFromTags } from '../../src/mesh/tags';

describe('relation ids and endpoint refs', () => {
  it('gives the same id whichever order the endpoints come in, and distinct ids to distinct pairs', () => {
    const ref = fc.record({ service: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/), endpoint: fc.stringMatching(/^[a-z][a-z0-9_-]{0,20}$/) });
    fc.assert(
      fc.property(ref, ref, ref, (x, y, z) => {
        expect(relationIdOf(x, y)).toBe(relationIdOf(y, x));
        const id = relationIdOf(x, y);
        expect(id.length).toBeLessThanOrEqual(128);
        expect(id).not.toContain('|');
        const same = (p: typeof x, q: typeof x) => p.service === q.service && p.endpoint === q.endpoint;
        // {x, y} and {x, z} are the same pair exactly when y = z
        expect(relationIdOf(x, z) === id).toBe(same(y, z));
      }),
    );
  });

  it('parses SERVICE:ENDPOINT and refuses anything else with a hint', () => {
    expect(parseEndpointRef('datanode:namenode')).toEqual({ service: 'datanode', endpoint: 'namenode' });
    for (const bad of ['datanode', 'Data:x', 'a:b:c', '', 42]) expect(() => parseEndpointRef(bad)).toThrow(/write SERVICE:ENDPOINT/);
  });
});

describe('declarations merge last-writer-wins', () => {
  const base: Declaration = { id: 'a:x~b:y', a: { service: 'a', endpoint: 'x' }, b: { service: 'b', endpoint: 'y' }, removed: false, stamp: 0, origin: 'a/0' };
  it('converges to the same winner whatever the arrival order', () => {
    const decl = fc.record({ removed: fc.boolean(), stamp: fc.integer({ min: 0, max: 20 }), origin: fc.constantFrom('a/0', 'a/1', 'b/0') }).map((d) => ({ ...base, ...d }));
    fc.assert(
      fc.property(fc.array(decl, { minLength: 1, maxLength: 8 }), (ds) => {
        const merge = (list: Declaration[]) => list.reduce((w, d) => (compareDeclarations(d, w) > 0 ? d : w));
        const forward = merge(ds);
        const backward = merge([...ds].reverse());
        expect(compareDeclarations(forward, backward)).toBe(0);
        expect(forward.removed).toBe(backward.removed);
      }),
    );
  });
});

describe('endpoint tags', () => {
  it('round-trips a charm\'s endpoints through gossip tags', () => {
    const meta = parseCharmMetadata({ name: 'hadoop-namenode', provides: { datanode: { interface: 'dfs-slave' } }, requires: { web: { interface: 'http' } }, peers: { ring: { interface: 'nn-peers' } } });
    const tags = agentTags('namenode', meta, { zone: 'a' });
    expect(tags).toMatchObject({ svc: 'namenode', zone: 'a' });
    // The control API stays on loopback: its URL is never gossiped.
    expect(Object.values(tags).join(' ')).not.toMatch(/http:|127\.0\.0\.1/);
    const member: Member = { name: 'namenode/0', address: '127.0.0.1:1', status: 'alive', tags, incarnation: 1 };
    const back = metadataFromTags(member)!;
    expect(back.endpoints).toEqual(meta.endpoints);
    expect(metadataFromTags({ ...member, tags: { svc: 'x', eps: 'broken' } })).toBeUndefined();
    expect(() => agentTags('namenode', meta, { big: 'x'.repeat(500) })).toThrow(/limit 512/);
  });
});
