/**
 * Where an agent's control API listens, recorded in its data directory so the
 * CLI can find it from `--data-dir` alone: `control.json`
 * (`{ "url": "http://127.0.0.1:PORT", "pid": N }`, mode 0600, written
 * atomically) next to `control.token`. `connectToAgent(dataDir)` reads both
 * and returns a ready `ControlClient`.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from '../errors';
import { ControlClient } from './client';
import { readToken } from './token-file';

export const ENDPOINT_FILE = 'control.json';

export interface ControlEndpoint {
  url: string;
  pid: number;
}

/** Checks the content of `control.json` (untrusted: it is a file anyone may have edited). */
export function parseControlEndpoint(value: unknown, file = ENDPOINT_FILE): ControlEndpoint {
  const v = value as { url?: unknown; pid?: unknown } | null;
  if (typeof v !== 'object' || v === null || typeof v.url !== 'string' || !/^http:\/\/[^/\s]+\/?$/.test(v.url)) {
    throw new AgentError('AGENT_ERR_BAD_OPTIONS', `${file} does not name a control URL (http://127.0.0.1:PORT); restart the agent to rewrite it`);
  }
  if (typeof v.pid !== 'number' || !Number.isSafeInteger(v.pid) || v.pid <= 0) {
    throw new AgentError('AGENT_ERR_BAD_OPTIONS', `${file} has no valid pid; restart the agent to rewrite it`);
  }
  return { url: v.url, pid: v.pid };
}

/** Records the control endpoint in `dataDir` (atomic replace, mode 0600). */
export async function writeControlEndpoint(dataDir: string, endpoint: ControlEndpoint): Promise<void> {
  const path = join(dataDir, ENDPOINT_FILE);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(parseControlEndpoint(endpoint))}\n`, { mode: 0o600 });
  await rename(tmp, path);
}

/** Reads the control endpoint recorded in `dataDir`. */
export async function readControlEndpoint(dataDir: string): Promise<ControlEndpoint> {
  const path = join(dataDir, ENDPOINT_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new AgentError(
      'AGENT_ERR_NOT_RUNNING',
      `no agent has served from data directory ${dataDir} (no ${ENDPOINT_FILE}); start one with 'rhizome agent --data-dir ${dataDir}'`,
      { cause: err },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  return parseControlEndpoint(value, path);
}

/** A client for the agent of `dataDir`, from its recorded endpoint and token. */
export async function connectToAgent(dataDir: string, opts: { timeoutMs?: number } = {}): Promise<ControlClient> {
  const endpoint = await readControlEndpoint(dataDir);
  const token = await readToken(dataDir);
  return new ControlClient({ url: endpoint.url, token, ...opts });
}
