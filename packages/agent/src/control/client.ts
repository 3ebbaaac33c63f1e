/**
 * ControlClient: talks to an agent's control API (see `server.ts`) for the
 * CLI and tests. Every failure is a `ControlError`:
 * - the agent is not listening -> AGENT_ERR_NOT_RUNNING ("agent not running at URL");
 * - a non-2xx answer -> the agent's `{ error: { code, message } }` (`code` if it
 *   is an agent code, else AGENT_ERR_CONTROL_HTTP with the original in
 *   `remoteCode`), with the HTTP `status`;
 * - no answer within `timeoutMs`, or a stream cut short -> AGENT_ERR_CONTROL_HTTP.
 *
 * Uses node:http without keep-alive, so a CLI exits as soon as it is done.
 */
import { request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { AgentError, ControlError, isAgentErrorCode } from '../errors';

export interface ControlClientOptions {
  /** e.g. `http://127.0.0.1:7070` */
  url: string;
  token: string;
  /** Per request (not per stream). */
  timeoutMs?: number;
  /**
   * Prepended to every path: `/units/<unit>` makes this client address
   * another unit through this agent, over the mesh (see `forUnit`).
   */
  pathPrefix?: string;
  /**
   * How errors name the agent (default `agent at <url>`). A unit on another machine is reached through
   * an SSH-forwarded loopback port, which would mean nothing to the operator reading the error.
   */
  name?: string;
}

export const DEFAULT_CONTROL_CLIENT_OPTIONS = Object.freeze({
  /** Control calls answer from memory; 30 s means the agent is stuck. */
  timeoutMs: 30_000,
});

/** The largest error or JSON answer read, to bound memory against a confused server. */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export class ControlClient {
  readonly url: string;
  private readonly base: URL;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly pathPrefix: string;
  private readonly name: string;

  constructor(opts: ControlClientOptions) {
    let base: URL;
    try {
      base = new URL(opts.url);
    } catch {
      throw new AgentError('AGENT_ERR_BAD_OPTIONS', `control URL '${opts.url}' is not a URL (e.g. http://127.0.0.1:7070)`);
    }
    if (base.protocol !== 'http:') {
      throw new AgentError('AGENT_ERR_BAD_OPTIONS', `control URL '${opts.url}' must be http:// (the API serves loopback only)`);
    }
    this.url = opts.url;
    this.base = base;
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_CONTROL_CLIENT_OPTIONS.timeoutMs;
    this.pathPrefix = opts.pathPrefix ?? '';
    this.name = opts.name ?? `agent at ${opts.url}`;
  }

  /** A client for `unit` through this agent: its requests are forwarded over the mesh (`/units/:unit/...`). */
  forUnit(unit: string): ControlClient {
    return new ControlClient({ url: this.url, token: this.token, timeoutMs: this.timeoutMs, pathPrefix: `/units/${encodeURIComponent(unit)}`, name: this.name });
  }

  /** The same client with another per-request timeout (e.g. `rhizome run --timeout`). */
  withTimeout(timeoutMs: number): ControlClient {
    return new ControlClient({ url: this.url, token: this.token, timeoutMs, pathPrefix: this.pathPrefix, name: this.name });
  }

  get<T = unknown>(path: string, query?: Record<string, string>): Promise<T> {
    return this.json<T>('GET', path, undefined, query);
  }

  post<T = unknown>(path: string, body?: unknown): Promise<T> {
    return this.json<T>('POST', path, body);
  }

  /** Sends a request and resolves with the parsed JSON answer (`undefined` for 204); aborting `signal` gives up on it. */
  async json<T = unknown>(method: string, path: string, body?: unknown, query?: Record<string, string>, signal?: AbortSignal): Promise<T> {
    const res = await this.send(method, path, body, query, this.timeoutMs, signal);
    const text = await readAll(res, this.url);
    if (res.statusCode === 204 || text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ControlError('AGENT_ERR_CONTROL_HTTP', res.statusCode ?? 0, `${this.name} sent a non-JSON answer`);
    }
  }

  /**
   * Streams an NDJSON route: yields each line's value until the agent ends
   * the stream. Breaking out of the loop (or aborting `signal`) closes the
   * connection, which ends the stream on the agent's side.
   */
  async *stream<T = unknown>(path: string, opts: { query?: Record<string, string>; signal?: AbortSignal; method?: 'GET' | 'POST'; body?: unknown } = {}): AsyncGenerator<T> {
    const res = await this.send(opts.method ?? 'GET', path, opts.body, opts.query, undefined, opts.signal);
    const onAbort = (): void => {
      res.destroy();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let buffered = '';
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        buffered += chunk.toString('utf8');
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line !== '') yield JSON.parse(line) as T;
        }
      }
    } catch (err) {
      if (opts.signal?.aborted === true) return;
      throw new ControlError(
        'AGENT_ERR_CONTROL_HTTP',
        res.statusCode ?? 0,
        `stream ${path} from ${this.url} ended abnormally: ${(err as Error).message}`,
        { cause: err },
      );
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      res.destroy();
    }
  }

  private send(
    method: string,
    path: string,
    body: unknown,
    query: Record<string, string> | undefined,
    timeoutMs: number | undefined,
    signal?: AbortSignal,
  ): Promise<IncomingMessage> {
    const url = new URL(this.pathPrefix + path, this.base);
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(url, {
        method,
        agent: false,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json, application/x-ndjson',
          ...(payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': String(payload.length) }),
        },
        ...(signal === undefined ? {} : { signal }),
      });
      let timer: NodeJS.Timeout | undefined;
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          req.destroy(
            new ControlError('AGENT_ERR_CONTROL_HTTP', 0, `${this.name} did not answer ${method} ${path} within ${timeoutMs} ms`),
          );
        }, timeoutMs);
      }
      req.once('error', (err: NodeJS.ErrnoException) => {
        if (timer !== undefined) clearTimeout(timer);
        if (err instanceof ControlError) return reject(err);
        if (err.code === 'ECONNREFUSED') {
          return reject(
            new ControlError(
              'AGENT_ERR_NOT_RUNNING',
              0,
              `agent not running at ${this.url} (connection refused). Start it with 'rhizome agent', ` +
                `or check the control address you gave.`,
              { cause: err },
            ),
          );
        }
        reject(new ControlError('AGENT_ERR_CONTROL_HTTP', 0, `request to ${this.name} failed: ${err.message}`, { cause: err }));
      });
      req.once('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          if (timer !== undefined) {
            // The timeout covers reading the answer too, for JSON calls.
            res.once('end', () => clearTimeout(timer));
            res.once('close', () => clearTimeout(timer));
          }
          resolve(res);
          return;
        }
        readAll(res, this.url)
          .then((text) => {
            if (timer !== undefined) clearTimeout(timer);
            reject(errorFromAnswer(status, text, method, path, this.url));
          })
          .catch((err: unknown) => {
            if (timer !== undefined) clearTimeout(timer);
            reject(err);
          });
      });
      req.end(payload);
    });
  }
}

function errorFromAnswer(status: number, text: string, method: string, path: string, url: string): ControlError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const error = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (error !== undefined && typeof error.code === 'string' && typeof error.message === 'string') {
    const code = isAgentErrorCode(error.code) ? error.code : 'AGENT_ERR_CONTROL_HTTP';
    return new ControlError(code, status, error.message, { remoteCode: error.code });
  }
  return new ControlError('AGENT_ERR_CONTROL_HTTP', status, `${method} ${path} at ${url} answered HTTP ${status}: ${text.slice(0, 200)}`);
}

function readAll(res: IncomingMessage, url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_RESPONSE_BYTES) {
        res.destroy();
        reject(new ControlError('AGENT_ERR_CONTROL_HTTP', res.statusCode ?? 0, `answer from ${url} exceeds ${MAX_RESPONSE_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    res.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.once('error', (err) =>
      reject(new ControlError('AGENT_ERR_CONTROL_HTTP', res.statusCode ?? 0, `reading the answer from ${url} failed: ${err.message}`, { cause: err })),
    );
    res.once('aborted', () =>
      reject(new ControlError('AGENT_ERR_CONTROL_HTTP', res.statusCode ?? 0, `answer from ${url} was cut short`)),
    );
  });
}
