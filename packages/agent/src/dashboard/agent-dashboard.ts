/**
 * An agent serving the dashboard itself (`dashboard: [HOST:]PORT` in its
 * config, `--dashboard` on `rhizome agent`): the same page as `rhizome
 * dashboard`, fed by this agent's own control API, which sees the whole mesh.
 *
 * The page's token is the agent's control token: whoever may read
 * `<data dir>/control.token` may open it, nobody else. The full address,
 * token included, is written to `<data dir>/dashboard.url` (0600, replaced
 * atomically, removed at close); logs and stdout name the address without
 * the token, since logs get shared.
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readToken } from '../control/token-file';
import { isLoopback } from '../internal/address';
import { startDashboard, type Dashboard } from './server';

export const DASHBOARD_URL_FILE = 'dashboard.url';

export interface AgentDashboard {
  /** The page's address without its token. */
  readonly address: string;
  /** Where the address with the token was written. */
  readonly urlFile: string;
  close(): Promise<void>;
}

export async function serveAgentDashboard(opts: {
  readonly dataDir: string;
  readonly controlUrl: string;
  readonly host: string;
  readonly port: number;
  /** Told when the page is reachable off loopback (its token then crosses the network in clear). */
  readonly warn: (message: string) => void;
}): Promise<AgentDashboard> {
  const token = await readToken(opts.dataDir);
  const offLoopback = !isLoopback(opts.host);
  const dashboard: Dashboard = await startDashboard({ globals: { agent: opts.controlUrl, token }, host: opts.host, port: opts.port, token, offLoopback });
  const urlFile = join(opts.dataDir, DASHBOARD_URL_FILE);
  const tmp = `${urlFile}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, `${dashboard.url}\n`, { mode: 0o600 });
    await rename(tmp, urlFile);
  } catch (err) {
    await dashboard.close();
    throw err;
  }
  const address = dashboard.url.replace(/\?token=.*$/, '');
  if (offLoopback) opts.warn(`the dashboard listens on ${opts.host} over plain HTTP: its token (the control token) crosses the network in clear`);
  return {
    address,
    urlFile,
    async close() {
      await rm(urlFile, { force: true });
      await dashboard.close();
    },
  };
}
