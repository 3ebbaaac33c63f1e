/**
 * `rhizome dashboard`: a live page of the cluster, served on loopback.
 *
 * The page talks only to this server, and this server only to the agents,
 * through the same data path as the CLI (`fetchClusterStatus`, the unit
 * clients): the browser never holds an agent's control token. It holds a
 * session token of its own, random per dashboard, given in the URL printed
 * at start and required (as a bearer token) by every `/api/` call, so
 * another local user's browser tab cannot drive it.
 *
 *   GET  /                       the page (token in the query)
 *   GET  /app.js                 the page's script (app-script.ts)
 *   GET  /vendor/htm-preact.js   htm + Preact, one ES module from the `htm` package
 *   GET  /api/status             the status summary `rhizome status` renders
 *   GET  /api/units/:unit/runs   the unit's run history (reports: handlers and why)
 *   GET  /api/units/:unit/logs   the unit's last log lines
 *   POST /api/units/:unit/resolve  `rhizome resolve UNIT` ({ skip?: boolean })
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { fetchClusterStatus } from '../cli/status/fetch';
import { AgentError } from '../errors';
import { formatHostPort, isLoopback, isWildcard } from '../internal/address';
import { summarizeStatus } from '../cli/status/model';
import { unitClient, type GlobalOptions } from '../cli/target';
import { APP_SCRIPT, PAGE } from './app-script';
import { readVendorScript } from './vendor';

export interface DashboardOptions {
  /** How the CLI was told to find the cluster (--home, --deployment, --data-dir...). */
  readonly globals: GlobalOptions;
  /** Default 127.0.0.1; anything but loopback only with `offLoopback`. */
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  /**
   * The token the page must present. Default: a random one per dashboard.
   * An agent serving its own dashboard passes its control token, so whoever
   * may read `control.token` may open the page, and nobody else.
   */
  readonly token?: string;
  /**
   * Allow a non-loopback `host`: only when an operator named that address
   * (the agent's `dashboard: 10.0.0.5:8080`). The page is plain HTTP, so
   * its token then crosses the network in clear.
   */
  readonly offLoopback?: boolean;
}

export interface Dashboard {
  /** The page's address, with its session token. */
  readonly url: string;
  close(): Promise<void>;
}

const UNIT_RE = /^[a-z][a-z0-9-]{0,62}\/\d{1,6}$/;
const MAX_BODY = 4 * 1024;


function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    // Only our own script and styles; no third-party anything.
    'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
  });
  res.end(body);
}
const sendJson = (res: ServerResponse, status: number, value: unknown): void => send(res, status, 'application/json', JSON.stringify(value));

async function readBody(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw Object.assign(new Error(`request body over ${MAX_BODY} bytes`), { status: 413 });
    chunks.push(c);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw Object.assign(new Error('request body is not JSON'), { status: 400 });
  }
}

export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const host = opts.host ?? '127.0.0.1';
  if (opts.offLoopback !== true && !isLoopback(host)) {
    throw new AgentError('AGENT_ERR_BAD_OPTIONS', `the dashboard serves on loopback only (127.0.0.1 or ::1), not ${host}; an agent's dashboard option may name another address explicitly`);
  }
  const token = opts.token ?? randomBytes(24).toString('base64url');
  const vendor = await readVendorScript();
  const g = opts.globals;
  const authorized = (req: IncomingMessage): boolean => {
    const given = Buffer.from(/^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '');
    const want = Buffer.from(token);
    return given.length === want.length && timingSafeEqual(given, want);
  };

  const api = async (req: IncomingMessage, path: string): Promise<unknown> => {
    if (req.method === 'GET' && path === '/status') return summarizeStatus(await fetchClusterStatus(g));
    const m = /^\/units\/([^/]+)\/(runs|logs|resolve)$/.exec(path);
    const unit = m ? decodeURIComponent(m[1]!) : '';
    if (!m || !UNIT_RE.test(unit)) throw Object.assign(new Error(`no such dashboard route: ${req.method} ${path}`), { status: 404 });
    const client = await unitClient(g, unit);
    if (m[2] === 'runs' && req.method === 'GET') return client.get('/runs');
    if (m[2] === 'logs' && req.method === 'GET') {
      const lines: unknown[] = [];
      for await (const line of client.stream('/logs', { query: { replay: '100', follow: 'false' } })) lines.push(line);
      return lines.slice(-100);
    }
    if (m[2] === 'resolve' && req.method === 'POST') {
      const body = (await readBody(req)) as { skip?: unknown };
      return client.post('/resolve', { skip: body?.skip === true });
    }
    throw Object.assign(new Error(`no such dashboard route: ${req.method} ${path}`), { status: 404 });
  };

  const server: Server = createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://dashboard');
      decodeURIComponent(url.pathname);
    } catch {
      sendJson(res, 400, { error: 'malformed URL' });
      return;
    }
    if (url.pathname === '/' && req.method === 'GET') return send(res, 200, 'text/html; charset=utf-8', PAGE);
    if (url.pathname === '/app.js' && req.method === 'GET') return send(res, 200, 'text/javascript; charset=utf-8', APP_SCRIPT);
    if (url.pathname === '/vendor/htm-preact.js' && req.method === 'GET') return send(res, 200, 'text/javascript; charset=utf-8', vendor);
    if (!url.pathname.startsWith('/api/')) return sendJson(res, 404, { error: `not found: ${url.pathname}` });
    if (!authorized(req)) {
      res.setHeader('connection', 'close');
      return sendJson(res, 401, { error: 'missing or wrong dashboard token: open the URL rhizome dashboard printed' });
    }
    api(req, url.pathname.slice('/api'.length)).then(
      (value) => sendJson(res, 200, value),
      (err: Error & { status?: number; code?: string }) => sendJson(res, err.status ?? 502, { error: err.message, ...(err.code ? { code: err.code } : {}) }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as { port: number };
  // A wildcard is where it listens, not an address to open: loopback reaches it.
  const reachable = isWildcard(host) ? (host === '0.0.0.0' ? '127.0.0.1' : '::1') : host;
  return {
    url: `http://${formatHostPort(reachable, port)}/?token=${token}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
