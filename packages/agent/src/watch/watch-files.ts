/**
 * watchFiles: tells a charm when files it cares about change, so a handler
 * can react to a configuration file edited by hand (the agent turns each call
 * of `onChange` into one `file.changed` internal event).
 *
 * chokidar watches the paths (files that do not exist yet included: creating
 * one counts as a change; so do edits, deletions and an editor's atomic
 * save). Changes are debounced: the first change starts a quiet period of
 * `debounceMs` that every further change restarts, and when it ends
 * `onChange` gets every path that changed during it, once each, sorted.
 * `maxWaitMs` bounds the wait under a continuous stream of writes.
 *
 * `onChange` is never called concurrently, and never after `close()`
 * resolves. An error thrown by it, or by the watcher, goes to `onError`.
 */
import { resolve } from 'node:path';
import type { FSWatcher } from 'chokidar';
import { AgentError } from '../errors';

export interface WatchFilesOptions {
  /** Files or directories to watch (resolved against the cwd). */
  paths: readonly string[];
  /** Quiet period before reporting. */
  debounceMs?: number;
  /** Report at the latest this long after the first change of a burst. */
  maxWaitMs?: number;
  /** Called with the absolute paths that changed, sorted. */
  onChange: (paths: string[]) => void | Promise<void>;
  onError?: (err: AgentError) => void;
}

export const DEFAULT_WATCH_FILES_OPTIONS = Object.freeze({
  /** Editors write a file in several steps; 200 ms joins them into one change. */
  debounceMs: 200,
  /** A log-like file written continuously is still reported every 2 s. */
  maxWaitMs: 2_000,
});

export interface FileWatcher {
  /** The absolute paths being watched. */
  readonly paths: readonly string[];
  close(): Promise<void>;
}

/** Starts watching; resolves once the watcher is ready (changes from then on are seen). */
export async function watchFiles(opts: WatchFilesOptions): Promise<FileWatcher> {
  const debounceMs = opts.debounceMs ?? DEFAULT_WATCH_FILES_OPTIONS.debounceMs;
  const maxWaitMs = Math.max(opts.maxWaitMs ?? DEFAULT_WATCH_FILES_OPTIONS.maxWaitMs, debounceMs);
  if (!Array.isArray(opts.paths) || opts.paths.length === 0 || !opts.paths.every((p) => typeof p === 'string' && p !== '')) {
    throw new AgentError('AGENT_ERR_BAD_OPTIONS', 'watchFiles: `paths` must list at least one path');
  }
  if (!(Number.isFinite(debounceMs) && debounceMs >= 0)) {
    throw new AgentError('AGENT_ERR_BAD_OPTIONS', 'watchFiles: `debounceMs` must be a number >= 0');
  }
  const paths = opts.paths.map((p) => resolve(p));
  const report = (err: unknown): void => {
    const agentErr =
      err instanceof AgentError
        ? err
        : new AgentError('AGENT_ERR_WATCH_FAILED', `watching ${paths.join(', ')} failed: ${String(err)}`, { cause: err });
    if (opts.onError !== undefined) opts.onError(agentErr);
  };

  const pending = new Set<string>();
  let quietTimer: NodeJS.Timeout | undefined;
  let maxTimer: NodeJS.Timeout | undefined;
  let delivering: Promise<void> = Promise.resolve();
  let closed = false;

  const flush = (): void => {
    if (quietTimer !== undefined) clearTimeout(quietTimer);
    if (maxTimer !== undefined) clearTimeout(maxTimer);
    quietTimer = maxTimer = undefined;
    if (pending.size === 0 || closed) return;
    const batch = [...pending].sort();
    pending.clear();
    delivering = delivering.then(async () => {
      if (closed) return;
      try {
        await opts.onChange(batch);
      } catch (err) {
        report(err);
      }
    });
  };

  const onEvent = (path: string): void => {
    if (closed) return;
    pending.add(resolve(path));
    if (quietTimer !== undefined) clearTimeout(quietTimer);
    quietTimer = setTimeout(flush, debounceMs);
    maxTimer ??= setTimeout(flush, maxWaitMs);
  };

  // Loaded when a charm watches files: most do not, and chokidar (with readdirp) is ~80 KB an agent would compile at start.
  const { watch } = await import('chokidar');
  const watcher: FSWatcher = watch(paths, { ignoreInitial: true, persistent: true });
  watcher.on('add', onEvent);
  watcher.on('change', onEvent);
  watcher.on('unlink', onEvent);
  watcher.on('error', report);
  await new Promise<void>((ready) => watcher.once('ready', ready));

  return {
    paths,
    close: async () => {
      if (closed) return;
      closed = true;
      if (quietTimer !== undefined) clearTimeout(quietTimer);
      if (maxTimer !== undefined) clearTimeout(maxTimer);
      pending.clear();
      await watcher.close();
      await delivering;
    },
  };
}
