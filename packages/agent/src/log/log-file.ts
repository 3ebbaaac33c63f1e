/**
 * The agent's log file, rotated at a size limit by pino-roll (the pino
 * project's rolling file stream; no hand-written rotation here).
 *
 * pino-roll writes numbered files in `logs/` next to `agent.log`
 * (`logs/agent.1.log`, `logs/agent.2.log`...; a directory of their own, since
 * pino-roll numbers and prunes by scanning it) and keeps `files - 1` rolled
 * ones besides the current one, across restarts too, so a unit's logs never
 * take more than about `files × maxBytes` whatever is logged (a flood of
 * rejected gossip frames included). `agent.log` is kept as a symlink to the
 * current file so operators and scripts still find "the" log by its name.
 * Files are 0600: log lines carry relation data and errors.
 */
import { renameSync, rmSync, symlinkSync } from 'node:fs';
import { lstat, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { DestinationStream } from 'pino';
import pinoRoll from 'pino-roll';
import { AgentError } from '../errors';
import { ensurePrivateDir, PRIVATE_FILE_MODE, tightenFile } from '../internal/private-fs';

export interface LogFileOptions {
  /** Size at which the current file is rolled (default 10 MiB). */
  readonly maxBytes?: number;
  /** Files kept, the current one included (default 3). */
  readonly files?: number;
  /** Write synchronously (default true): the last lines before a crash are the ones that matter. */
  readonly sync?: boolean;
}

export const DEFAULT_LOG_FILE_OPTIONS = Object.freeze({ maxBytes: 10 * 1024 * 1024, files: 3, sync: true });

export interface LogFile {
  readonly stream: DestinationStream;
  /** The file being written now. */
  readonly current: () => string;
  close(): void;
}

/**
 * Points `link` at `target` (relative to the link's directory), replacing
 * whatever is there atomically. Synchronous on purpose: rolls can follow
 * each other quickly, and the last one must win.
 */
function pointAt(link: string, target: string): void {
  const tmp = `${link}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, link);
}

/** Opens `<dir>/agent.log` (the path given) as a size-rotated log. */
export async function openLogFile(path: string, options: LogFileOptions = {}): Promise<LogFile> {
  const maxBytes = options.maxBytes ?? DEFAULT_LOG_FILE_OPTIONS.maxBytes;
  const files = options.files ?? DEFAULT_LOG_FILE_OPTIONS.files;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1024) {
    throw new AgentError('AGENT_ERR_BAD_OPTIONS', `log file maxBytes must be an integer of at least 1024 (got ${maxBytes})`);
  }
  if (!Number.isSafeInteger(files) || files < 1) throw new AgentError('AGENT_ERR_BAD_OPTIONS', `log files must be at least 1 (got ${files})`);
  // A regular agent.log from before rotation existed: keep it, once, under a name pino-roll leaves alone.
  const st = await lstat(path).catch(() => undefined);
  if (st?.isFile() === true) {
    const old = join(dirname(path), `${basename(path)}.old`);
    await rename(path, old);
    await tightenFile(old);
  }
  const dir = join(dirname(path), 'logs');
  await ensurePrivateDir(dir);
  const stream = await pinoRoll({
    file: join(dir, basename(path)),
    size: `${Math.max(1, Math.floor(maxBytes / 1024))}k`,
    // removeOtherLogFiles: also prune what earlier runs of the agent left
    // (in that mode pino-roll keeps `count` files, the current one included).
    limit: { count: files, removeOtherLogFiles: true },
    mkdir: true,
    mode: PRIVATE_FILE_MODE,
    sync: options.sync ?? DEFAULT_LOG_FILE_OPTIONS.sync,
  });
  const target = (): string => join('logs', basename(stream.file));
  stream.on('ready', () => {
    try {
      pointAt(path, target());
    } catch {
      // the data dir is going away (destroy): nothing to point at
    }
  });
  pointAt(path, target());
  // A write error (disk full) must not crash the agent: the line is lost, the agent keeps running.
  stream.on('error', () => undefined);
  return {
    stream: stream as unknown as DestinationStream,
    current: () => stream.file,
    close: () => {
      try {
        stream.flushSync();
      } catch {
        // nothing buffered, or the file is gone
      }
      stream.end();
    },
  };
}
