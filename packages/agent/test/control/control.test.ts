import { request } from 'node:http';
import { connect } from 'node:net';
import { mkdtemp, rm, stat, writeFile, chmod, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentError, ControlError } from '../../src/errors';
import { ControlClient } from '../../src/control/client';
import { createControlServer } from '../../src/control/server';
import type { ControlRequest, ControlServer } from '../../src/control/server';
import { connectToAgent, readControlEndpoint, writeControlEndpoint } from '../../src/control/endpoint';
import { loadOrCreateToken, tokensEqual } from '../../src/control/token';
import { until } from '@rhizome/test-support';

const TOKEN = 'a'.repeat(64);
const servers: ControlServer[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** A raw request, to see exactly what the server answers. */
function raw(
  url: string,
  opts: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(opts.path, url), { method: opts.method ?? 'GET', headers: opts.headers ?? {}, agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.end(opts.body);
  });
}

const auth = { authorization: `Bearer ${TOKEN}` };

let streamState = { started: 0, aborted: 0, finished: 0 };

async function startServer(): Promise<ControlServer> {
  streamState = { started: 0, aborted: 0, finished: 0 };
  const server = await createControlServer({
    token: TOKEN,
    maxBodyBytes: 1024,
    routes: {
      'GET /status': () => ({ unit: 'web/0', ok: true }),
      'GET /facts/:unit': (req: ControlRequest) => {
        if (req.params['unit'] !== 'web-0') {
          throw new ControlError('AGENT_ERR_NOT_FOUND', 404, `unknown unit '${req.params['unit']}': see 'rhizome status'`);
        }
        return { unit: req.params['unit'], facts: { port: 8080 }, verbose: req.query.get('verbose') };
      },
      'POST /event': (req: ControlRequest) => ({ received: req.body }),
      'POST /resolve': () => undefined,
      'POST /boom': () => {
        throw new Error('kaput');
      },
      'POST /bad': () => {
        throw new AgentError('AGENT_ERR_BAD_REQUEST', 'payload must be an object');
      },
      'POST /foreign': () => {
        throw Object.assign(new Error('handler install failed'), { code: 'ENGINE_ERR_HANDLER' });
      },
      'GET /logs': {
        kind: 'stream',
        handler: (req: ControlRequest) =>
          (async function* () {
            streamState.started++;
            req.signal.addEventListener('abort', () => streamState.aborted++);
            try {
              for (let i = 0; ; i++) {
                if (req.signal.aborted) return;
                yield { seq: i, msg: `line ${i}` };
                await new Promise((r) => setTimeout(r, 10));
              }
            } finally {
              streamState.finished++;
            }
          })(),
      },
      'GET /finite': { kind: 'stream', handler: () => (async function* () { yield 1; yield { two: 2 }; yield 'three'; })() },
      'GET /broken': {
        kind: 'stream',
        handler: () =>
          (async function* () {
            yield 1;
            throw new Error('source failed');
          })(),
      },
    },
  });
  servers.push(server);
  return server;
}

describe('control token', () => {
  it('is created once with mode 0600 and reused; tightened if readable by others', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rhizome-token-'));
    dirs.push(dir);
    const token = await loadOrCreateToken(join(dir, 'data'));
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    const file = join(dir, 'data', 'control.token');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await loadOrCreateToken(join(dir, 'data'))).toBe(token);
    await chmod(file, 0o644);
    expect(await loadOrCreateToken(join(dir, 'data'))).toBe(token);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await writeFile(file, 'garbage');
    await expect(loadOrCreateToken(join(dir, 'data'))).rejects.toMatchObject({ code: 'AGENT_ERR_BAD_OPTIONS' });
    expect(await readFile(file, 'utf8')).toBe('garbage'); // not overwritten
  });

  it('compares tokens of any length', () => {
    expect(tokensEqual('abc', 'abc')).toBe(true);
    expect(tokensEqual('abc', 'abd')).toBe(false);
    expect(tokensEqual('abc', 'abcd')).toBe(false);
    expect(tokensEqual('', 'x')).toBe(false);
  });
});

describe('control server', () => {
  it('answers 401 JSON without a token or with a wrong one, before routing', async () => {
    const { url } = await startServer();
    for (const headers of [{}, { authorization: `Bearer ${'b'.repeat(64)}` }, { authorization: TOKEN }, { authorization: `Bearer ${TOKEN}x` }]) {
      for (const path of ['/status', '/no-such-route']) {
        const res = await raw(url, { path, headers });
        expect(res.status).toBe(401);
        expect(res.headers['www-authenticate']).toBe('Bearer');
        expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'AGENT_ERR_UNAUTHORIZED' } });
      }
    }
    const ok = await raw(url, { path: '/status', headers: auth });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ unit: 'web/0', ok: true });
  });

  it('routes params and query; 404 for unknown routes, 405 for wrong methods', async () => {
    const { url } = await startServer();
    const facts = await raw(url, { path: '/facts/web-0?verbose=yes', headers: auth });
    expect(JSON.parse(facts.body)).toEqual({ unit: 'web-0', facts: { port: 8080 }, verbose: 'yes' });
    const unknownUnit = await raw(url, { path: '/facts/db-9', headers: auth });
    expect(unknownUnit.status).toBe(404);
    expect(JSON.parse(unknownUnit.body).error.message).toContain("unknown unit 'db-9'");
    const missing = await raw(url, { path: '/nope', headers: auth });
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toEqual({ error: { code: 'AGENT_ERR_NOT_FOUND', message: 'no such endpoint: GET /nope' } });
    const wrongMethod = await raw(url, { method: 'POST', path: '/status', headers: auth });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers['allow']).toBe('GET');
  });

  it('parses JSON bodies, rejects bad JSON (400) and oversized bodies (413)', async () => {
    const { url } = await startServer();
    const ok = await raw(url, { method: 'POST', path: '/event', headers: auth, body: '{"name":"deploy","n":1}' });
    expect(JSON.parse(ok.body)).toEqual({ received: { name: 'deploy', n: 1 } });
    const bad = await raw(url, { method: 'POST', path: '/event', headers: auth, body: '{nope' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error.code).toBe('AGENT_ERR_BAD_REQUEST');
    const big = await raw(url, { method: 'POST', path: '/event', headers: auth, body: JSON.stringify({ x: 'y'.repeat(5000) }) });
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body).error.code).toBe('AGENT_ERR_BODY_TOO_LARGE');
    const empty = await raw(url, { method: 'POST', path: '/resolve', headers: auth });
    expect(empty.status).toBe(204);
  });

  it('answers 400 (not 500) for a malformed percent-encoded path', async () => {
    const { url } = await startServer();
    const r = await raw(url, { path: '/%ZZ', headers: auth });
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).error.code).toBe('AGENT_ERR_BAD_REQUEST');
    const r2 = await raw(url, { path: '/facts/%E0%A4%A', headers: auth });
    expect(r2.status).toBe(400);
  });

  it('rejects bodies nested deeper than maxBodyDepth (400) without overflowing the stack', async () => {
    const server = await createControlServer({ token: TOKEN, routes: { 'POST /event': (req: ControlRequest) => ({ received: req.body }) } });
    servers.push(server);
    const deep = (n: number): string => '['.repeat(n) + ']'.repeat(n);
    const ok = await raw(server.url, { method: 'POST', path: '/event', headers: auth, body: deep(64) });
    expect(ok.status).toBe(200);
    for (const n of [65, 5000, 100_000]) {
      const r = await raw(server.url, { method: 'POST', path: '/event', headers: auth, body: deep(n) });
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body).error.message).toMatch(/deeper than 64/);
    }
  });

  it('answers a huge POST without a token at once with 401 and closes without reading it', async () => {
    const { url, port } = await startServer();
    const total = 200 * 1024 * 1024;
    const sock = connect(port, '127.0.0.1');
    let answer = '';
    let written = 0;
    const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
    sock.on('data', (d: Buffer) => (answer += d.toString()));
    sock.on('error', () => undefined); // EPIPE/ECONNRESET once the server hangs up: expected
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(`POST /event HTTP/1.1\r\nHost: ${new URL(url).host}\r\nContent-Type: application/json\r\nContent-Length: ${total}\r\n\r\n`);
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const started = Date.now();
    // Write as fast as the server takes it, bounded by the size and by 20 s.
    while (!sock.destroyed && written < total && Date.now() - started < 20_000) {
      if (!sock.write(chunk)) {
        await Promise.race([new Promise((r) => sock.once('drain', r)), closed, new Promise((r) => setTimeout(r, 200))]);
      }
      written += chunk.length;
      if (answer.includes('\r\n\r\n') && written > 32 * 1024 * 1024) break;
    }
    await Promise.race([closed, new Promise((r) => setTimeout(r, 10_000))]);
    sock.destroy();
    expect(answer).toMatch(/^HTTP\/1\.1 401/);
    expect(answer.toLowerCase()).toContain('connection: close');
    // The server stopped taking bytes long before 200 MB (socket buffers are a few MB).
    expect(written).toBeLessThan(32 * 1024 * 1024);
  });

  it('turns thrown errors into status + { error: { code, message } }', async () => {
    const { url } = await startServer();
    const boom = await raw(url, { method: 'POST', path: '/boom', headers: auth });
    expect(boom.status).toBe(500);
    expect(JSON.parse(boom.body)).toEqual({ error: { code: 'AGENT_ERR_INTERNAL', message: 'internal error: kaput' } });
    const bad = await raw(url, { method: 'POST', path: '/bad', headers: auth });
    expect(bad.status).toBe(400);
    const foreign = await raw(url, { method: 'POST', path: '/foreign', headers: auth });
    expect(JSON.parse(foreign.body)).toEqual({ error: { code: 'ENGINE_ERR_HANDLER', message: 'handler install failed' } });
  });

  it('maps errors of other packages with errorStatus', async () => {
    const server = await createControlServer({
      token: TOKEN,
      errorStatus: (err) => ((err as { code?: string }).code === 'RELATIONS_ERR_UNKNOWN_UNIT' ? 404 : undefined),
      routes: {
        'POST /relate': () => {
          throw Object.assign(new Error("unknown unit 'db/7'"), { code: 'RELATIONS_ERR_UNKNOWN_UNIT' });
        },
      },
    });
    servers.push(server);
    const res = await raw(server.url, { method: 'POST', path: '/relate', headers: auth });
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body)).toEqual({ error: { code: 'RELATIONS_ERR_UNKNOWN_UNIT', message: "unknown unit 'db/7'" } });
  });

  it('ends open streams when it closes', async () => {
    const server = await startServer();
    servers.splice(servers.indexOf(server), 1);
    const client = new ControlClient({ url: server.url, token: TOKEN });
    const got: unknown[] = [];
    const reading = (async () => {
      for await (const item of client.stream('/logs')) got.push(item);
    })().catch((e: unknown) => e);
    await until('got.length >= 2', () => got.length >= 2);
    await server.close();
    await reading; // ends (cleanly or with a typed error) instead of hanging
    await until('streamState.finished === 1', () => streamState.finished === 1);
  });

  it('refuses to bind a non-loopback address', async () => {
    await expect(createControlServer({ host: '0.0.0.0', token: TOKEN, routes: {} })).rejects.toMatchObject({
      code: 'AGENT_ERR_BAD_OPTIONS',
    });
  });
});

describe('ControlClient', () => {
  it('gets and posts JSON, and raises typed errors for non-2xx answers', async () => {
    const { url } = await startServer();
    const client = new ControlClient({ url, token: TOKEN });
    expect(await client.get('/status')).toEqual({ unit: 'web/0', ok: true });
    expect(await client.get('/facts/web-0', { verbose: '1' })).toMatchObject({ verbose: '1' });
    expect(await client.post('/event', { name: 'x' })).toEqual({ received: { name: 'x' } });
    expect(await client.post('/resolve')).toBeUndefined();

    const notFound = await client.get('/facts/nobody').catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(ControlError);
    expect(notFound).toMatchObject({ code: 'AGENT_ERR_NOT_FOUND', status: 404 });
    const foreign = await client.post('/foreign').catch((e: unknown) => e);
    expect(foreign).toMatchObject({ code: 'AGENT_ERR_CONTROL_HTTP', remoteCode: 'ENGINE_ERR_HANDLER', status: 500 });

    const wrong = new ControlClient({ url, token: 'c'.repeat(64) });
    await expect(wrong.get('/status')).rejects.toMatchObject({ code: 'AGENT_ERR_UNAUTHORIZED', status: 401 });
  });

  it('says the agent is not running when nothing listens', async () => {
    const server = await startServer();
    const url = server.url;
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    const client = new ControlClient({ url, token: TOKEN });
    const err = await client.get('/status').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ControlError);
    expect((err as ControlError).code).toBe('AGENT_ERR_NOT_RUNNING');
    expect((err as ControlError).message).toContain(`agent not running at ${url}`);
  });

  it('names the agent as it was told when it does not answer (a remote unit behind an SSH-forwarded port)', async () => {
    // Accepts the connection, never answers: what a forward to a machine on a lossy link looks like.
    const silent = (await import('node:net')).createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
      const client = new ControlClient({ url, token: TOKEN, timeoutMs: 200, name: 'the agent of web/0 on root@10.0.0.5 (over SSH)' });
      const err = (await client.forUnit('web/1').get('/status').catch((e: unknown) => e)) as ControlError;
      expect(err.message).toBe('the agent of web/0 on root@10.0.0.5 (over SSH) did not answer GET /status within 200 ms');
    } finally {
      silent.close();
    }
  });

  it('streams NDJSON and closes the server side when the client stops reading', async () => {
    const { url } = await startServer();
    const client = new ControlClient({ url, token: TOKEN });
    const got: unknown[] = [];
    for await (const item of client.stream<{ seq: number }>('/logs')) {
      got.push(item);
      if (got.length === 5) break;
    }
    expect(got).toEqual([0, 1, 2, 3, 4].map((i) => ({ seq: i, msg: `line ${i}` })));
    await until('streamState.aborted === 1 && streamState.finished === 1', () => streamState.aborted === 1 && streamState.finished === 1);

    const all: unknown[] = [];
    for await (const item of client.stream('/finite')) all.push(item);
    expect(all).toEqual([1, { two: 2 }, 'three']);
  });

  it('stops a stream on abort, and reports a stream the agent cut short', async () => {
    const { url } = await startServer();
    const client = new ControlClient({ url, token: TOKEN });
    const controller = new AbortController();
    const got: unknown[] = [];
    for await (const item of client.stream('/logs', { signal: controller.signal })) {
      got.push(item);
      if (got.length === 3) controller.abort();
    }
    expect(got.length).toBeGreaterThanOrEqual(3);
    await until('streamState.finished === 1', () => streamState.finished === 1);

    const partial: unknown[] = [];
    const err = await (async () => {
      for await (const item of client.stream('/broken')) partial.push(item);
    })().catch((e: unknown) => e);
    expect(partial).toEqual([1]);
    expect(err).toMatchObject({ code: 'AGENT_ERR_CONTROL_HTTP' });
  });
});

describe('control endpoint in the data directory', () => {
  it('lets a client connect from the data directory alone', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'rhizome-endpoint-'));
    dirs.push(dataDir);
    await expect(connectToAgent(dataDir)).rejects.toMatchObject({ code: 'AGENT_ERR_NOT_RUNNING' });
    const token = await loadOrCreateToken(dataDir);
    const server = await createControlServer({ token, routes: { 'GET /status': () => ({ up: true }) } });
    servers.push(server);
    await writeControlEndpoint(dataDir, { url: server.url, pid: process.pid });
    expect((await stat(join(dataDir, 'control.json'))).mode & 0o777).toBe(0o600);
    expect(await readControlEndpoint(dataDir)).toEqual({ url: server.url, pid: process.pid });
    const client = await connectToAgent(dataDir);
    expect(await client.get('/status')).toEqual({ up: true });

    await writeFile(join(dataDir, 'control.json'), '{"url":"ftp://x","pid":1}');
    await expect(readControlEndpoint(dataDir)).rejects.toMatchObject({ code: 'AGENT_ERR_BAD_OPTIONS' });
    await writeFile(join(dataDir, 'control.json'), 'not json');
    await expect(readControlEndpoint(dataDir)).rejects.toMatchObject({ code: 'AGENT_ERR_BAD_OPTIONS' });
  });
});
