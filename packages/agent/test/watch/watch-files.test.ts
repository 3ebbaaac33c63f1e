import { mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { watchFiles } from '../../src/watch/watch-files';
import type { FileWatcher } from '../../src/watch/watch-files';
import { until } from '@rhizome/test-support';

const dirs: string[] = [];
const watchers: FileWatcher[] = [];
afterEach(async () => {
  await Promise.all(watchers.splice(0).map((w) => w.close()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rhizome-watch-'));
  dirs.push(dir);
  return dir;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('watchFiles', () => {
  it('reports two quick edits of a file as one debounced change naming it', async () => {
    const dir = await freshDir();
    const file = join(dir, 'app.conf');
    const marker = join(dir, 'marker.conf');
    await writeFile(file, 'port=1\n');
    const events: string[][] = [];
    const watcher = await watchFiles({ paths: [file, marker], debounceMs: 800, onChange: (paths) => void events.push(paths) });
    watchers.push(watcher);
    await writeFile(file, 'port=2\n');
    await sleep(50);
    await writeFile(file, 'port=3\n');
    await until('the first change reported', () => events.length >= 1);
    // Nothing more comes from the two edits: a later change of another file is reported next, and alone
    // (events arrive in order, so a second report of app.conf would come before it, or with it).
    await writeFile(marker, 'x');
    await until('the marker reported', () => events.some((e) => e.includes(marker)));
    expect(events).toEqual([[file], [marker]]);
  });

  it('joins changes to several files, sees new and deleted files, and atomic saves', async () => {
    const dir = await freshDir();
    const a = join(dir, 'a.conf');
    const b = join(dir, 'b.conf'); // does not exist yet
    await writeFile(a, '1');
    const events: string[][] = [];
    const watcher = await watchFiles({ paths: [a, b], debounceMs: 800, onChange: (paths) => void events.push(paths) });
    watchers.push(watcher);
    await writeFile(b, 'new');
    await writeFile(a, '2');
    await until('events.length >= 1', () => events.length >= 1);
    expect(events[0]).toEqual([a, b].sort());

    await unlink(b);
    await until('events.length >= 2', () => events.length >= 2);
    expect(events[1]).toEqual([b]);

    // An editor's atomic save: write a temp file, rename it over the original.
    await writeFile(join(dir, 'a.conf.tmp'), '3');
    await rename(join(dir, 'a.conf.tmp'), a);
    await until('events.length >= 3', () => events.length >= 3);
    expect(events[2]).toEqual([a]);
  });

  it('delivers nothing after close, and routes handler errors to onError', async () => {
    const dir = await freshDir();
    const file = join(dir, 'x.conf');
    await writeFile(file, '1');
    const events: string[][] = [];
    const errors: string[] = [];
    const watcher = await watchFiles({
      paths: [file],
      debounceMs: 100,
      onChange: (paths) => {
        events.push(paths);
        throw new Error('handler broke');
      },
      onError: (err) => errors.push(err.message),
    });
    await writeFile(file, '2');
    await until('errors.length === 1', () => errors.length === 1);
    expect(errors[0]).toContain('handler broke');
    await watcher.close();
    // A second watcher on the same file, with the same debounce, shows when the closed one would have reported.
    const seen: string[][] = [];
    const witness = await watchFiles({ paths: [file], debounceMs: 100, onChange: (paths) => void seen.push(paths) });
    watchers.push(witness);
    await writeFile(file, '3');
    await until('the witness watcher reports the write', () => seen.length >= 1);
    expect(events).toHaveLength(1);
  });

  it('still reports a file written continuously, at most maxWaitMs apart', async () => {
    const dir = await freshDir();
    const file = join(dir, 'busy.log');
    await writeFile(file, '0');
    const events: number[] = [];
    const watcher = await watchFiles({ paths: [file], debounceMs: 1_000, maxWaitMs: 400, onChange: () => void events.push(Date.now()) });
    watchers.push(watcher);
    // Writes every 100 ms for 2.5 s: the quiet period never comes.
    for (let i = 0; i < 25; i++) {
      await writeFile(file, String(i));
      await sleep(100);
    }
    expect(events.length).toBeGreaterThanOrEqual(2);
  });

  it('rejects bad options', async () => {
    await expect(watchFiles({ paths: [], onChange: () => undefined })).rejects.toMatchObject({ code: 'AGENT_ERR_BAD_OPTIONS' });
  });
});
