/**
 * What a running agent records about itself in its data directory
 * (`agent.json`), for the CLI and `deploy`: its pid and addresses. Kept apart
 * from agent.ts so CLI commands can read it without loading the agent.
 */
import { rename, writeFile } from 'node:fs/promises';

/** The file (in the data dir) describing the running agent. */
export const AGENT_INFO_FILE = 'agent.json';

export interface AgentInfo {
  readonly unit: string;
  readonly service: string;
  readonly pid: number;
  readonly controlUrl: string;
  readonly gossipAddress: string;
  readonly dataDir: string;
  readonly unitDir: string;
  readonly startedAt: number;
}

/** Writes JSON atomically (tmp + rename), mode 0600. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, path);
}
