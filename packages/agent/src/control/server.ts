/**
 * The agent's control API: JSON over HTTP on the loopback interface, for the
 * `rhizome` CLI and scripts.
 *
 * Every request is handled by one ladder of guard clauses:
 *   1. no `Authorization: Bearer <token>`, or a wrong one -> 401 (compared in
 *      constant time, checked before anything else so the routes stay hidden;
 *      the body is never read and the connection is closed);
 *   (a path with malformed percent-encoding -> 400)
 *   2. no route for the path -> 404; a route for another method -> 405;
 *   3. a body over `maxBodyBytes` -> 413; a body that is not JSON, or nests
 *      deeper than `maxBodyDepth` -> 400;
 *   4. the route's handler runs: its value is the 200 JSON answer (204 when it
 *      returns undefined); a thrown error becomes `{ error: { code, message } }`
 *      with the error's HTTP status (`ControlError.status`, else a status by
 *      code, else 500).
 *
 * Routes are a table keyed `'METHOD /path'`; a `:name` segment matches one
 * path segment into `req.params.name`. A stream route returns an async
 * iterable; each value is sent as one NDJSON line over a chunked response,
 * and `req.signal` aborts (ending the iteration) when the client goes away.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { nestsDeeperThan } from '@rhizome/gossip';
import { AgentError, ControlError } from '../errors';
import type { AgentErrorCode } from '../errors';
import { tokensEqual } from './token';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface ControlRequest {
  method: HttpMethod;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Parsed JSON body (`undefined` when empty). Untrusted: parse it in the handler. */
  body: unknown;
  /** Aborted when the client disconnects or the server closes. */
  signal: AbortSignal;
}

export type JsonHandler = (req: ControlRequest) => unknown;

export interface StreamRoute {
  kind: 'stream';
  handler: (req: ControlRequest) => AsyncIterable<unknown>;
}

export type ControlRoute = JsonHandler | StreamRoute;
export type ControlRoutes = Readonly<Record<`${HttpMethod} /${string}`, ControlRoute>>;

export interface ControlServerOptions {
  /** Loopback only: the token travels in clear text. */
  host?: string;
  /** 0 picks a free port (see `ControlServer.port`). */
  port?: number;
  token: string;
  routes: ControlRoutes;
  maxBodyBytes?: number;
  /** Deepest nesting of arrays/objects accepted in a JSON body (checked before any route sees it). */
  maxBodyDepth?: number;
  /** HTTP status for errors of other packages (return undefined for the default). */
  errorStatus?: (err: unknown) => number | undefined;
}

export const DEFAULT_CONTROL_SERVER_OPTIONS = Object.freeze({
  /** Never reachable from another machine. */
  host: '127.0.0.1',
  /** Any free port; the agent records the one it got. */
  port: 0,
  /** Control requests are small (relate, event payloads); 1 MiB is generous. */
  maxBodyBytes: 1024 * 1024,
  /** Far above any real request; low enough that no schema or encoder recurses into trouble. */
  maxBodyDepth: 64,
});

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** Default HTTP status of the agent's own codes. */
const STATUS_BY_CODE: Partial<Record<AgentErrorCode, number>> = {
  AGENT_ERR_UNAUTHORIZED: 401,
  AGENT_ERR_NOT_FOUND: 404,
  AGENT_ERR_METHOD_NOT_ALLOWED: 405,
  AGENT_ERR_BAD_REQUEST: 400,
  AGENT_ERR_BAD_OPTIONS: 400,
  AGENT_ERR_BODY_TOO_LARGE: 413,
  AGENT_ERR_BAD_CONFIG: 400,
  AGENT_ERR_UNKNOWN_UNIT: 404,
  AGENT_ERR_RELATE: 400,
  AGENT_ERR_CONFIG: 400,
  AGENT_ERR_ACTION: 400,
  AGENT_ERR_STOPPED: 503,
  // a unit reached over the mesh: stopped, or not answering
  AGENT_ERR_NOT_RUNNING: 503,
  AGENT_ERR_REMOTE: 504,
  AGENT_ERR_KEYS: 400,
};

export interface ControlServer {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  close(): Promise<void>;
}

interface CompiledRoute {
  method: HttpMethod;
  segments: string[];
  route: ControlRoute;
}

function compile(routes: ControlRoutes): CompiledRoute[] {
  return Object.entries(routes).map(([key, route]) => {
    const m = /^(GET|POST|PUT|DELETE) (\/\S*)$/.exec(key);
    if (m === null) {
      throw new AgentError('AGENT_ERR_BAD_OPTIONS', `control route key '${key}' must look like 'GET /status'`);
    }
    const ok = typeof route === 'function' || (route.kind === 'stream' && typeof route.handler === 'function');
    if (!ok) throw new AgentError('AGENT_ERR_BAD_OPTIONS', `control route '${key}' must be a function or a stream route`);
    return { method: m[1] as HttpMethod, segments: m[2]!.split('/').filter((s) => s !== ''), route };
  });
}

function match(route: CompiledRoute, segments: string[]): Record<string, string> | undefined {
  if (route.segments.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const want = route.segments[i]!;
    const got = segments[i]!;
    if (want.startsWith(':')) params[want.slice(1)] = got;
    else if (want !== got) return undefined;
  }
  return params;
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (status === 204) {
    res.writeHead(204, headers).end();
    return;
  }
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}

function sendError(res: ServerResponse, err: ControlError, headers: Record<string, string> = {}): void {
  sendJson(res, err.status, { error: { code: err.remoteCode, message: err.message } }, headers);
}

function toControlError(err: unknown, errorStatus?: (err: unknown) => number | undefined): ControlError {
  if (err instanceof ControlError) return err;
  const custom = errorStatus?.(err);
  if (err instanceof AgentError) {
    return new ControlError(err.code, custom ?? STATUS_BY_CODE[err.code] ?? 500, err.message, { cause: err });
  }
  // Errors of other packages keep their own code (`ENGINE_ERR_...`).
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(code)) {
    return new ControlError('AGENT_ERR_INTERNAL', custom ?? 500, message, { cause: err, remoteCode: code });
  }
  return new ControlError('AGENT_ERR_INTERNAL', custom ?? 500, `internal error: ${message}`, { cause: err });
}

/**
 * Answers without reading the (rest of the) request body: the response says
 * `connection: close`, reading stops, and once the answer is flushed the
 * socket is half-closed, then destroyed after a short grace so the client can
 * read the answer. A 200 MB upload costs the server a few socket buffers.
 */
function refuseBody(req: IncomingMessage, res: ServerResponse): void {
  if (!res.headersSent) res.setHeader('connection', 'close');
  req.removeAllListeners('data');
  req.pause();
  const socket = req.socket;
  res.once('finish', () => {
    socket.end();
    setTimeout(() => socket.destroy(), REFUSE_GRACE_MS).unref();
  });
}

/** How long a refused client has to read its answer before the socket is destroyed. */
const REFUSE_GRACE_MS = 1_000;

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = (): ControlError =>
      new ControlError('AGENT_ERR_BODY_TOO_LARGE', 413, `request body exceeds ${limit} bytes`);
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/** Starts the control API; resolves once it listens. */
export async function createControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  const host = opts.host ?? DEFAULT_CONTROL_SERVER_OPTIONS.host;
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_CONTROL_SERVER_OPTIONS.maxBodyBytes;
  const maxBodyDepth = opts.maxBodyDepth ?? DEFAULT_CONTROL_SERVER_OPTIONS.maxBodyDepth;
  if (!LOOPBACK.has(host)) {
    throw new AgentError(
      'AGENT_ERR_BAD_OPTIONS',
      `control API host '${host}' is not a loopback address; the token is sent in clear text, so bind 127.0.0.1 ` +
        `(reach a remote agent over ssh instead)`,
    );
  }
  if (typeof opts.token !== 'string' || opts.token.length < 16) {
    throw new AgentError('AGENT_ERR_BAD_OPTIONS', 'control API token must be at least 16 characters (use loadOrCreateToken)');
  }
  const routes = compile(opts.routes);
  const expected = `Bearer ${opts.token}`;
  const closing = new AbortController();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // 1. Authentication, before anything else.
    const auth = req.headers.authorization ?? '';
    if (!tokensEqual(auth, expected)) {
      // Never read a stranger's body: answer, then close the connection.
      refuseBody(req, res);
      sendError(
        res,
        new ControlError(
          'AGENT_ERR_UNAUTHORIZED',
          401,
          auth === ''
            ? 'missing Authorization header: send "Authorization: Bearer <token>" with the token from <data-dir>/control.token'
            : 'wrong token: use the one in the agent\'s <data-dir>/control.token',
        ),
        { 'www-authenticate': 'Bearer' },
      );
      return;
    }

    // 2. Routing.
    const url = new URL(req.url ?? '/', 'http://control');
    let segments: string[];
    try {
      segments = url.pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
    } catch {
      refuseBody(req, res);
      sendError(res, new ControlError('AGENT_ERR_BAD_REQUEST', 400, `malformed percent-encoding in path ${url.pathname.slice(0, 200)}`));
      return;
    }
    const candidates = routes
      .map((r) => ({ r, params: match(r, segments) }))
      .filter((c): c is { r: CompiledRoute; params: Record<string, string> } => c.params !== undefined);
    if (candidates.length === 0) {
      req.resume();
      sendError(res, new ControlError('AGENT_ERR_NOT_FOUND', 404, `no such endpoint: ${req.method} ${url.pathname}`));
      return;
    }
    const found = candidates.find((c) => c.r.method === req.method);
    if (found === undefined) {
      req.resume();
      const allow = [...new Set(candidates.map((c) => c.r.method))].join(', ');
      sendError(
        res,
        new ControlError('AGENT_ERR_METHOD_NOT_ALLOWED', 405, `${req.method} is not allowed on ${url.pathname} (use ${allow})`),
        { allow },
      );
      return;
    }

    // 3. Body.
    const raw = await readBody(req, maxBodyBytes);
    let body: unknown;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch (err) {
        throw new ControlError('AGENT_ERR_BAD_REQUEST', 400, `request body is not valid JSON: ${(err as Error).message}`);
      }
      // Before any handler (or a recursive schema) walks it.
      if (nestsDeeperThan(body, maxBodyDepth)) {
        throw new ControlError('AGENT_ERR_BAD_REQUEST', 400, `request body nests deeper than ${maxBodyDepth} levels of arrays/objects`);
      }
    }

    const aborted = new AbortController();
    const abort = (): void => aborted.abort();
    res.once('close', abort);
    closing.signal.addEventListener('abort', abort, { once: true });
    const request: ControlRequest = {
      method: found.r.method,
      path: url.pathname,
      params: found.params,
      query: url.searchParams,
      body,
      signal: aborted.signal,
    };

    try {
      // 4. The handler.
      const route = found.r.route;
      if (typeof route === 'function') {
        const value = await route(request);
        sendJson(res, value === undefined ? 204 : 200, value ?? null);
        return;
      }
      const iterable = route.handler(request);
      res.writeHead(200, {
        'content-type': 'application/x-ndjson; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
      });
      res.flushHeaders();
      // Race each step against the abort, so a source that ignores the signal
      // can't keep a dead connection's handler alive.
      const iterator = iterable[Symbol.asyncIterator]();
      const whenAborted = new Promise<'aborted'>((r) => {
        if (aborted.signal.aborted) r('aborted');
        aborted.signal.addEventListener('abort', () => r('aborted'), { once: true });
      });
      try {
        for (;;) {
          const step = await Promise.race([iterator.next(), whenAborted]);
          if (step === 'aborted' || step.done === true) break;
          if (!res.write(`${JSON.stringify(step.value)}\n`)) {
            await Promise.race([new Promise((r) => res.once('drain', r)), whenAborted]);
          }
        }
      } catch (err) {
        // Headers are gone: flush what was sent, then cut the chunked response
        // short (no final chunk) so the client sees an error, not a clean end.
        await new Promise<void>((r) => res.write('', () => r()));
        res.destroy(err instanceof Error ? err : new Error(String(err)));
        return;
      } finally {
        void Promise.resolve(iterator.return?.()).catch(() => undefined);
      }
      if (!res.writableEnded) res.end();
    } finally {
      closing.signal.removeEventListener('abort', abort);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const ce = toControlError(err, opts.errorStatus);
      if (ce.status === 413) refuseBody(req, res);
      if (res.headersSent) res.destroy();
      else sendError(res, ce);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? DEFAULT_CONTROL_SERVER_OPTIONS.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        closing.abort();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
