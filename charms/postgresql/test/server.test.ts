/**
 * The postgresql charm's pure parts: options, where a unit's cluster lives
 * (unique per unit, private when the server runs as another user), what
 * identifies its postmaster, and SQL quoting of generated values.
 */
import { describe, expect, it } from 'vitest';
import { parsePostgresqlConfig } from '../src/config';
import { ident, literal, pgPaths, postgresWorkload } from '../src/server';

describe('postgresql charm', () => {
  const cfg = parsePostgresqlConfig({});

  it('refuses bad options with the option named', () => {
    expect(() => parsePostgresqlConfig({ port: 80 })).toThrow(/port/);
    expect(() => parsePostgresqlConfig({ database: 'Robert"); DROP' })).toThrow(/database/);
    expect(() => parsePostgresqlConfig({ 'data-root': 'relative' })).toThrow(/absolute/);
  });

  it('keeps each unit in its own cluster: under the unit dir, or under data-root when another user runs it', () => {
    expect(pgPaths('/d/pg-0/unit', cfg, false).data).toBe('/d/pg-0/unit/pg/data');
    const a = pgPaths('/d1/pg-0/unit', cfg, true);
    const b = pgPaths('/d2/pg-0/unit', cfg, true);
    expect(a.root.startsWith('/var/lib/postgresql/rhizome/pg-0-')).toBe(true);
    expect(a.root).not.toBe(b.root);
    expect(postgresWorkload(a)).toEqual({ name: 'postgres', pidFile: `${a.data}/postmaster.pid`, cmdline: ['postgres', `-D ${a.data}`], dataDir: a.root });
  });

  it('quotes SQL literals and identifiers', () => {
    expect(literal("it's")).toBe("'it''s'");
    expect(ident('a"b')).toBe('"a""b"');
  });
});
