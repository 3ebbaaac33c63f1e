/**
 * The web unit's workload: a node:http server in the agent's own process.
 * One server per unit directory (several units may share a process in tests
 * and simulations), kept in a module-level registry so the charm's `stop`
 * can find the server its handlers started. Starting is idempotent: a unit
 * whose server is already listening on the wanted port keeps it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RunningServer {
  readonly server: Server;
  readonly host: string;
  readonly port: number;
}

const running = new Map<string, RunningServer>();

export class WebServerError extends Error {
  readonly code = 'WEB_ERR_LISTEN';
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'WebServerError';
  }
}

/** The body a web unit answers every request with. */
export function greeting(unit: string): string {
  return `${unit}\n`;
}

/**
 * Starts (or keeps) the server of the unit whose directory is `key`.
 * `port` 0 asks the OS for a free one.
 */
export async function ensureServer(key: string, unit: string, host: string, port: number): Promise<RunningServer> {
  const current = running.get(key);
  if (current && (port === 0 || current.port === port) && current.server.listening) return current;
  if (current) await stopServer(key);
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-rhizome-unit': unit, connection: 'close' });
    res.end(req.method === 'HEAD' ? undefined : greeting(unit));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new WebServerError(`web server of ${unit} cannot listen on ${host}:${port}: ${err.code ?? err.message}${err.code === 'EADDRINUSE' ? '; another process holds the port: free it, or set the `port` option to 0 for an OS-assigned one' : ''}`, { cause: err })),
    );
    server.listen(port, host, () => resolve());
  });
  const started: RunningServer = { server, host, port: (server.address() as AddressInfo).port };
  running.set(key, started);
  return started;
}

/** Closes the unit's server (and its idle keep-alive connections); a no-op when none runs. */
export async function stopServer(key: string): Promise<void> {
  const current = running.get(key);
  if (!current) return;
  running.delete(key);
  await new Promise<void>((resolve) => {
    current.server.close(() => resolve());
    current.server.closeAllConnections();
  });
}
