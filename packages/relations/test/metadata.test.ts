import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { checkRelation } from '../src/compat';
import { RelationError } from '../src/errors';
import { defineInterface, InterfaceRegistry } from '../src/interface';
import { dfsSlave } from './interfaces/dfs-slave';
import { http } from './interfaces/http';
import { parseCharmMetadata } from '../src/metadata';
import { datanodeMeta, lbMeta, namenodeMeta, webMeta } from './fixtures';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RelationError);
    return (e as RelationError).code;
  }
  throw new Error('expected a RelationError, nothing was thrown');
}

describe('parseCharmMetadata', () => {
  it('normalizes endpoints with their roles', () => {
    expect(namenodeMeta.endpoints['datanode']).toEqual({ name: 'datanode', role: 'provides', interface: 'dfs-slave' });
    expect(namenodeMeta.endpoints['cluster']).toEqual({ name: 'cluster', role: 'peers', interface: 'hdfs-peers' });
    expect(Object.isFrozen(namenodeMeta.endpoints)).toBe(true);
  });

  it.each([
    ['not an object', 42],
    ['no name', { provides: {} }],
    ['bad name', { name: 'Bad Name' }],
    ['endpoint without interface', { name: 'x', provides: { db: {} } }],
    ['interface not a string', { name: 'x', requires: { db: { interface: 5 } } }],
    ['unknown endpoint field', { name: 'x', requires: { db: { interface: 'mysql', colour: 'red' } } }],
    ['bad limit', { name: 'x', requires: { db: { interface: 'mysql', limit: -1 } } }],
  ])('refuses %s with REL_ERR_BAD_METADATA', (_label, input) => {
    expect(codeOf(() => parseCharmMetadata(input))).toBe('REL_ERR_BAD_METADATA');
  });

  it('names the offending path in the message', () => {
    expect(() => parseCharmMetadata({ name: 'x', requires: { db: {} } })).toThrow(/requires\.db\.interface/);
  });

  it('refuses an endpoint name used in two sections', () => {
    expect(() => parseCharmMetadata({ name: 'x', provides: { db: { interface: 'a' } }, requires: { db: { interface: 'a' } } })).toThrow(/both in provides and in requires/);
  });
});

describe('checkRelation', () => {
  const registry = new InterfaceRegistry([dfsSlave, http]);

  it('accepts provides <-> requires on the same interface, in either order', () => {
    const r = checkRelation({ service: 'dn', endpoint: 'namenode', metadata: datanodeMeta }, { service: 'nn', endpoint: 'datanode', metadata: namenodeMeta }, registry);
    expect(r).toMatchObject({ interface: 'dfs-slave', peer: false, a: { role: 'requires' }, b: { role: 'provides' } });
    expect(checkRelation({ service: 'web', endpoint: 'website', metadata: webMeta }, { service: 'lb', endpoint: 'backends', metadata: lbMeta }, registry).interface).toBe('http');
  });

  it('refuses two requirers, and different interfaces', () => {
    expect(codeOf(() => checkRelation({ service: 'dn', endpoint: 'namenode', metadata: datanodeMeta }, { service: 'web', endpoint: 'backend', metadata: webMeta }))).toBe('REL_ERR_INCOMPATIBLE');
    expect(codeOf(() => checkRelation({ service: 'dn', endpoint: 'namenode', metadata: datanodeMeta }, { service: 'web', endpoint: 'website', metadata: webMeta }))).toBe('REL_ERR_INCOMPATIBLE');
    expect(() => checkRelation({ service: 'dn', endpoint: 'namenode', metadata: datanodeMeta }, { service: 'web', endpoint: 'website', metadata: webMeta })).toThrow(/"dfs-slave" vs "http"/);
  });

  it('refuses relating a service to itself on a non-peer endpoint, even when roles match up', () => {
    expect(codeOf(() => checkRelation({ service: 'lb', endpoint: 'backends', metadata: lbMeta }, { service: 'lb', endpoint: 'frontend', metadata: lbMeta }))).toBe('REL_ERR_SELF_RELATION');
  });

  it('accepts a peers endpoint on itself only', () => {
    expect(checkRelation({ service: 'nn', endpoint: 'cluster', metadata: namenodeMeta }, { service: 'nn', endpoint: 'cluster', metadata: namenodeMeta }).peer).toBe(true);
    expect(codeOf(() => checkRelation({ service: 'nn', endpoint: 'cluster', metadata: namenodeMeta }, { service: 'other', endpoint: 'cluster', metadata: namenodeMeta }))).toBe('REL_ERR_INCOMPATIBLE');
  });

  it('refuses unknown endpoints and unknown interfaces', () => {
    expect(codeOf(() => checkRelation({ service: 'dn', endpoint: 'nope', metadata: datanodeMeta }, { service: 'nn', endpoint: 'datanode', metadata: namenodeMeta }))).toBe('REL_ERR_UNKNOWN_ENDPOINT');
    expect(codeOf(() => checkRelation({ service: 'dn', endpoint: 'namenode', metadata: datanodeMeta }, { service: 'nn', endpoint: 'datanode', metadata: namenodeMeta }, new InterfaceRegistry([http])))).toBe('REL_ERR_UNKNOWN_INTERFACE');
  });
});

describe('defineInterface and InterfaceRegistry', () => {
  it('refuses a bad name, version or schema', () => {
    expect(codeOf(() => defineInterface({ name: 'Bad', version: '1.0.0', provides: z.object({}), requires: z.object({}) }))).toBe('REL_ERR_UNKNOWN_INTERFACE');
    expect(codeOf(() => defineInterface({ name: 'ok', version: 'one', provides: z.object({}), requires: z.object({}) }))).toBe('REL_ERR_UNKNOWN_INTERFACE');
    expect(codeOf(() => defineInterface({ name: 'ok', version: '1.0.0', provides: z.string() as never, requires: z.object({}) }))).toBe('REL_ERR_UNKNOWN_INTERFACE');
  });

  it('lists known interfaces when asked for an unknown one', () => {
    const r = new InterfaceRegistry([dfsSlave, http]);
    expect(() => r.get('mysql')).toThrow(/unknown interface "mysql"; known interfaces: dfs-slave, http/);
    expect(r.get('http')).toBe(http);
  });

  it('refuses two definitions under one name', () => {
    const other = defineInterface({ name: 'http', version: '2.0.0', provides: z.object({}), requires: z.object({}) });
    expect(() => new InterfaceRegistry([http, other])).toThrow(/registered twice/);
  });
});
