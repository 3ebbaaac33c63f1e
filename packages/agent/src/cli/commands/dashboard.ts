/**
 * `rhizome dashboard`: serves the live dashboard (src/dashboard/) on
 * loopback and prints its address, session token included; runs until
 * SIGINT/SIGTERM. It finds the cluster as `rhizome status` does (the
 * deployment record, or the local agent with --data-dir).
 */
import type { Command } from 'commander';
import { choiceArg, portArg } from '../usage';
import type { GlobalOptions } from '../target';

export function registerDashboard(program: Command, globals: () => GlobalOptions): void {
  program
    .command('dashboard')
    .description("serve a live web view of the cluster on 127.0.0.1 (units, relations, runs, logs, resolve); an agent can serve it too: 'rhizome agent --dashboard PORT'")
    .option('--port <port>', 'port to listen on (default: a free one)', portArg, 0)
    // Loopback only: the dashboard can resolve units, so it never listens elsewhere.
    .option('--host <host>', 'loopback address to listen on: 127.0.0.1 or ::1', choiceArg(['127.0.0.1', '::1']), '127.0.0.1')
    .action(async (opts: { port: number; host: string }) => {
      const port = opts.port;
      const { startDashboard } = await import('../../dashboard/server');
      const dashboard = await startDashboard({ globals: globals(), host: opts.host, port: Number(port) });
      process.stdout.write(`dashboard: ${dashboard.url}\n(Ctrl-C stops it; the token in the address is this dashboard's own, not an agent's)\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await dashboard.close();
    });
}
