import { mkdtemp, readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { naturalSort, parseHadoopXml, renderHadoopXml, unitLabel, writeFileAtomic } from '../src/index';

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rhizome-kit-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('writes new content, leaves no temporary file, and reports the write', async () => {
    const p = join(dir, 'workers');
    expect(await writeFileAtomic(p, 'a\n')).toBe(true);
    expect(await readFile(p, 'utf8')).toBe('a\n');
    expect(await writeFileAtomic(p, 'b\n')).toBe(true);
    expect(await readFile(p, 'utf8')).toBe('b\n');
    expect(await readdir(dir)).toEqual(['workers']);
  });

  it('does not touch a file whose content would not change', async () => {
    const p = join(dir, 'core-site.xml');
    await writeFileAtomic(p, 'same');
    const old = new Date('2020-01-01T00:00:00Z');
    await utimes(p, old, old);
    expect(await writeFileAtomic(p, 'same')).toBe(false);
    expect((await stat(p)).mtime.getTime()).toBe(old.getTime());
  });

  it('fails cleanly when the directory does not exist', async () => {
    await expect(writeFileAtomic(join(dir, 'missing', 'f'), 'x')).rejects.toThrow(/ENOENT/);
  });
});

describe('Hadoop XML', () => {
  it('round-trips properties, escaping XML characters', () => {
    const xml = renderHadoopXml([['fs.defaultFS', 'hdfs://10.0.0.1:8020'], ['odd', 'a<b>&"c"'], ['dfs.replication', 3]], 'core-site -- demo');
    expect(parseHadoopXml(xml)).toEqual({ 'fs.defaultFS': 'hdfs://10.0.0.1:8020', odd: 'a<b>&"c"', 'dfs.replication': '3' });
    expect(xml).not.toContain('-- demo');
  });

  it('rejects text that is not a configuration file', () => {
    expect(() => parseHadoopXml('<html></html>')).toThrow(/no <configuration>/);
  });
});

describe('naturalSort', () => {
  it('orders numbers the way people count and drops duplicates', () => {
    expect(naturalSort(['dn-10', 'dn-2', 'dn-1', 'dn-2'])).toEqual(['dn-1', 'dn-2', 'dn-10']);
    expect(unitLabel('hadoop-datanode/3')).toBe('hadoop-datanode-3');
  });
});
