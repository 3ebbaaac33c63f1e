/**
 * `rhizome dashboard`: serves the live dashboard (src/dashboard/) on
 * loopback and prints its address, session token included; runs until
 * SIGINT/SIGTERM. It finds the cluster as `rhizome status` does (the
 * deployment record, or the local agent with --data-dir).
 */
import type { Command } from 'commander';
import { AgentError } from '../../errors';
import type { GlobalOptions } from '../target';

export function registerDashboard(program: Command, globals: () => GlobalOptions): void {
  program
    .command('dashboard')
    .description("serve a live web view of the cluster on 127.0.0.1 (units, relations, runs, logs, resolve); an agent can serve it too: 'rhizome agent --dashboard PORT'")
    .option('--port <port>', 'port to listen on (default: a free one)')
    .option('--host <host>', 'loopback address to listen on: 127.0.0.1 or ::1', '127.0.0.1')
    .action(async (opts: { port?: string; host: string }) => {
      const port = opts.port ?? '0';
      if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw new AgentError('AGENT_ERR_BAD_OPTIONS', `--port must be a port number, got "${port}"`);
      if (!['127.0.0.1', '::1'].includes(opts.host)) throw new AgentError('AGENT_ERR_BAD_OPTIONS', `--host must be a loopback address (127.0.0.1 or ::1): the dashboard can resolve units, so it never listens elsewhere`);
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
