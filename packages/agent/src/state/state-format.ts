/**
 * The state format of a data directory, and the refusal of an agent too old
 * for it. `<data dir>/state/FORMAT` holds `{ "format": N, "writtenBy":
 * "<rhizome version>" }`: the format of what the agent that last opened the
 * state wrote there, and which release that was.
 *
 * Why: a release may keep state an older one does not know. Format 2 keeps
 * each link's outbox and numbering in the knowledge base (`@out/...` keys):
 * an agent of format 1 would ignore them, start new link epochs, and drop
 * relation messages that were committed but not yet acknowledged. So an
 * agent that finds a newer format than it understands refuses to start
 * (AGENT_ERR_STATE_TOO_NEW, naming both versions and what to do) before it
 * reads or writes anything; an agent that finds an older format (or no
 * FORMAT: a directory written before this file existed, format 1) takes the
 * state over and records its own format, once the state is open and locked.
 * Agents from before FORMAT existed cannot refuse: the guard holds from the
 * release that wrote the first FORMAT on.
 *
 * Bump STATE_FORMAT whenever a release writes state that an agent of the
 * previous format would misread or ignore; never lower it.
 */
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from '../errors';
import { readIfExists } from '../persistence/read-if-exists';

/** The state format this release writes (1: before FORMAT existed; 2: link outboxes in the knowledge base). */
export const STATE_FORMAT = 2;
export const STATE_FORMAT_FILE = 'FORMAT';

export interface StateFormatRecord {
  readonly format: number;
  /** The rhizome release that wrote it. */
  readonly writtenBy: string;
}

/** An agent older than the state in its data directory. Nothing was read or changed. */
export class StateTooNewError extends AgentError {
  override readonly name = 'StateTooNewError';
  constructor(
    readonly dir: string,
    readonly found: StateFormatRecord,
    readonly ours: StateFormatRecord,
  ) {
    super(
      'AGENT_ERR_STATE_TOO_NEW',
      `the state in ${dir} is in format ${found.format}, written by rhizome ${found.writtenBy}; this agent (rhizome ${ours.writtenBy}) ` +
        `understands formats up to ${ours.format} and would lose what the newer one keeps (relation messages not yet acknowledged). ` +
        `Nothing was read or changed. Run this unit on rhizome ${found.writtenBy} or later (install it, then 'rhizome upgrade-model' ` +
        `or 'rhizome start UNIT'), or restore the data directory from a backup taken before it ran ${found.writtenBy}.`,
    );
  }
}

/** Reads `<stateDir>/FORMAT`; undefined when there is none. A damaged one is an error naming the file (nothing is guessed). */
export async function readStateFormat(stateDir: string): Promise<StateFormatRecord | undefined> {
  const file = join(stateDir, STATE_FORMAT_FILE);
  let text: string | undefined;
  try {
    text = await readIfExists(file, 'utf8');
  } catch (err) {
    throw new AgentError('AGENT_ERR_STORE_FAILED', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const v = value as Partial<StateFormatRecord> | undefined;
  if (v === null || typeof v !== 'object' || !Number.isSafeInteger(v.format) || (v.format ?? 0) < 1 || typeof v.writtenBy !== 'string') {
    throw new AgentError(
      'AGENT_ERR_STORE_CORRUPT',
      `${file} is damaged (expected {"format": N, "writtenBy": "VERSION"}, found ${JSON.stringify(text.slice(0, 200))}); nothing was changed. ` +
        `If the state was written by this release, write {"format": ${STATE_FORMAT}, "writtenBy": "<its version>"} there; else restore the data directory from a backup.`,
    );
  }
  return { format: v.format!, writtenBy: v.writtenBy };
}

/** Throws StateTooNewError when the state in `stateDir` is in a newer format than this release's (before anything opens it). */
export async function checkStateFormat(stateDir: string, version: string): Promise<StateFormatRecord | undefined> {
  const found = await readStateFormat(stateDir);
  if (found !== undefined && found.format > STATE_FORMAT) throw new StateTooNewError(stateDir, found, { format: STATE_FORMAT, writtenBy: version });
  return found;
}

/**
 * Records this release's format in `stateDir` (once the state is open and
 * locked), durably: written to a temporary file, fsynced, renamed, and the
 * directory fsynced, so a crash leaves the old record or the new one.
 */
export async function recordStateFormat(stateDir: string, version: string, fsync = true): Promise<void> {
  const file = join(stateDir, STATE_FORMAT_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify({ format: STATE_FORMAT, writtenBy: version } satisfies StateFormatRecord)}\n`);
    if (fsync) await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  if (fsync) {
    const dir = await open(stateDir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
