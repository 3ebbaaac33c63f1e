/**
 * Reading an agent's control token (`<dataDir>/control.token`), all a CLI
 * command needs: kept apart from token.ts so that a client does not load
 * node:crypto (the agent's side: creating and comparing tokens).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from '../errors';

export const TOKEN_FILE = 'control.token';

/** Reads the token of an agent's data directory (for the CLI); clear error if missing. */
export async function readToken(dataDir: string): Promise<string> {
  const path = join(dataDir, TOKEN_FILE);
  let token: string;
  try {
    token = (await readFile(path, 'utf8')).trim();
  } catch (err) {
    throw new AgentError(
      'AGENT_ERR_NOT_RUNNING',
      `no control token at ${path}: has an agent ever started with --data-dir ${dataDir}? ` +
        `(Reading it needs the agent's user.)`,
      { cause: err },
    );
  }
  return token;
}
