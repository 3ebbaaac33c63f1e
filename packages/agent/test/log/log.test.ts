import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/control/client';
import { logStreamRoute } from '../../src/control/log-route';
import { createControlServer } from '../../src/control/server';
import type { ControlRequest, ControlServer } from '../../src/control/server';
import { LogTail } from '../../src/log/log-tail';
import type { LogRecord } from '../../src/log/log-tail';
import { createLogger, runLogger } from '../../src/log/logger';
import { until } from '@rhizome/test-support';

const dirs: string[] = [];
const servers: ControlServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

function memoryStream(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('createLogger / runLogger', () => {
  it('writes JSON lines with the unit to a file, filtered by level, secrets redacted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rhizome-log-'));
    dirs.push(dir);
    const file = join(dir, 'logs', 'agent.log');
    const logger = createLogger({ level: 'info', unit: 'web/0', destination: file });
    logger.debug('hidden');
    logger.info({ relation: 'db', password: 'hunter2', data: { token: 'abc', host: 'h' } }, 'joined');
    logger.warn('careful');
    const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l['msg'])).toEqual(['joined', 'careful']);
    expect(lines[0]).toMatchObject({ unit: 'web/0', level: 30, relation: 'db', password: '[redacted]', data: { token: '[redacted]', host: 'h' } });
    expect(typeof lines[0]!['time']).toBe('number');
  });

  it('puts the runId on every line of a run, including nested children', () => {
    const mem = memoryStream();
    const logger = createLogger({ unit: 'db/1', destination: mem.stream });
    const run = runLogger(logger, 'run-42', { handler: 'configure' });
    run.info('start');
    run.child({ executor: 'ansible' }).info('playbook ok');
    run.error({ err: new Error('bad') }, 'failed');
    logger.info('outside any run');
    const lines = mem.lines();
    expect(lines.slice(0, 3).every((l) => l['runId'] === 'run-42' && l['unit'] === 'db/1' && l['handler'] === 'configure')).toBe(true);
    expect(lines[1]).toMatchObject({ executor: 'ansible' });
    expect(lines[2]).toMatchObject({ err: { message: 'bad' } });
    expect(lines[3]!['runId']).toBeUndefined();
  });

  it('rejects a bad level or a missing unit', () => {
    expect(() => createLogger({ unit: 'u/0', level: 'loud' as never })).toThrow(/log level 'loud'/);
    expect(() => createLogger({ unit: '' })).toThrow(/unit/);
  });
});

describe('LogTail', () => {
  const rec = (i: number, runId?: string): LogRecord => ({ level: 30, time: i, msg: `m${i}`, ...(runId ? { runId } : {}) });

  it('keeps only the last `capacity` records, oldest first, and filters', () => {
    const tail = new LogTail({ capacity: 5 });
    for (let i = 0; i < 12; i++) tail.push(rec(i, i % 2 === 0 ? 'even' : 'odd'));
    expect(tail.size).toBe(5);
    expect(tail.evicted).toBe(7);
    expect(tail.recent().map((r) => r.msg)).toEqual(['m7', 'm8', 'm9', 'm10', 'm11']);
    expect(tail.recent({ runId: 'even' }).map((r) => r.msg)).toEqual(['m8', 'm10']);
    expect(tail.recent({ limit: 2 }).map((r) => r.msg)).toEqual(['m10', 'm11']);
  });

  it('stubs oversized records and wraps non-JSON lines', () => {
    const tail = new LogTail({ capacity: 10, maxRecordBytes: 100 });
    tail.write(`${JSON.stringify({ level: 50, time: 1, runId: 'r1', msg: 'x'.repeat(500) })}\n`);
    tail.write('plain text\n');
    const [big, plain] = tail.recent();
    expect(big).toMatchObject({ level: 50, time: 1, runId: 'r1', truncated: true });
    expect(big!.msg!.length).toBeLessThan(300);
    expect(plain).toMatchObject({ level: 30, msg: 'plain text' });
  });

  it('follows: replays, then yields new records until aborted', async () => {
    const tail = new LogTail({ capacity: 100 });
    tail.push(rec(1));
    tail.push(rec(2));
    const controller = new AbortController();
    const got: LogRecord[] = [];
    const done = (async () => {
      for await (const r of tail.follow({ signal: controller.signal, replay: 1 })) got.push(r);
    })();
    await until('got.length === 1 && tail.followerCount === 1', () => got.length === 1 && tail.followerCount === 1);
    tail.push(rec(3));
    tail.push(rec(4));
    await until('got.length === 3', () => got.length === 3);
    controller.abort();
    await done;
    expect(got.map((r) => r.msg)).toEqual(['m2', 'm3', 'm4']);
    expect(tail.followerCount).toBe(0);
  });

  it('bounds a slow follower and tells it what it missed', async () => {
    const tail = new LogTail({ capacity: 3 });
    const controller = new AbortController();
    const it = tail.follow({ signal: controller.signal })[Symbol.asyncIterator]();
    const first = it.next(); // subscribes, then waits for a record
    tail.push(rec(0));
    expect((await first).value).toMatchObject({ msg: 'm0' });
    for (let i = 1; i <= 10; i++) tail.push(rec(i)); // reader is not reading
    const next = await it.next();
    expect(next.value).toMatchObject({ level: 40, msg: expect.stringContaining('skipped 7 record(s)') });
    const rest: string[] = [];
    for (let i = 0; i < 3; i++) rest.push(((await it.next()).value as LogRecord).msg!);
    expect(rest).toEqual(['m8', 'm9', 'm10']);
    controller.abort();
    expect((await it.next()).done).toBe(true);
  });

  it("feeds the control API's log stream from the logger: replay + follow over HTTP", async () => {
    const tail = new LogTail({ capacity: 50 });
    const logger = createLogger({ unit: 'web/0', destination: memoryStream().stream, tail });
    logger.info('before the client');
    runLogger(logger, 'run-1').info('in a run');
    const token = 't'.repeat(64);
    const server = await createControlServer({
      token,
      routes: {
        'GET /logs': {
          kind: 'stream',
          handler: (req: ControlRequest) =>
            tail.follow({
              signal: req.signal,
              ...(req.query.get('run') === null ? {} : { runId: req.query.get('run')! }),
            }),
        },
      },
    });
    servers.push(server);
    const client = new ControlClient({ url: server.url, token });
    const got: LogRecord[] = [];
    for await (const r of client.stream<LogRecord>('/logs')) {
      got.push(r);
      if (got.length === 2) logger.warn('after the client connected');
      if (got.length === 3) break;
    }
    expect(got.map((r) => r.msg)).toEqual(['before the client', 'in a run', 'after the client connected']);
    expect(got.every((r) => r.unit === 'web/0')).toBe(true);
    await until('tail.followerCount === 0', () => tail.followerCount === 0);

    const runOnly: LogRecord[] = [];
    for await (const r of client.stream<LogRecord>('/logs', { query: { run: 'run-1' } })) {
      runOnly.push(r);
      break;
    }
    expect(runOnly[0]).toMatchObject({ msg: 'in a run', runId: 'run-1' });
  });

  it('serves logStreamRoute: filters by run and level, replay counts, non-follow mode, 400 on bad query', async () => {
    const tail = new LogTail({ capacity: 50 });
    const logger = createLogger({ unit: 'web/0', level: 'debug', destination: memoryStream().stream, tail });
    logger.debug('d1');
    runLogger(logger, 'run-7').info('i1');
    runLogger(logger, 'run-7').warn('w1');
    logger.error('e1');
    const token = 't'.repeat(64);
    const server = await createControlServer({ token, routes: { 'GET /logs': logStreamRoute(tail) } });
    servers.push(server);
    const client = new ControlClient({ url: server.url, token });
    const collect = async (query: Record<string, string>): Promise<string[]> => {
      const out: string[] = [];
      for await (const r of client.stream<LogRecord>('/logs', { query: { follow: 'false', ...query } })) out.push(r.msg ?? '');
      return out;
    };
    expect(await collect({})).toEqual(['d1', 'i1', 'w1', 'e1']);
    expect(await collect({ level: 'warn' })).toEqual(['w1', 'e1']);
    expect(await collect({ run: 'run-7' })).toEqual(['i1', 'w1']);
    expect(await collect({ replay: '1' })).toEqual(['e1']);
    expect(await collect({ level: '50' })).toEqual(['e1']);
    for (const query of [{ level: 'loud' }, { replay: '-1' }, { follow: 'maybe' }]) {
      await expect(collect(query)).rejects.toMatchObject({ code: 'AGENT_ERR_BAD_REQUEST', status: 400 });
    }
  });
});
