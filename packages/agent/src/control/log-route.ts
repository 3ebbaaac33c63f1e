/**
 * The control API's log stream route (`rhizome logs`), over a `LogTail`.
 *
 * Query parameters, all optional, checked here at the boundary (400 if bad):
 * - `run=<runId>`: only the lines of one run;
 * - `level=<name|number>`: only lines at or above a level (`warn`, `40`);
 * - `replay=<n>`: how many recent lines to send first (default: all kept);
 * - `follow=false`: send the recent lines and end, instead of following.
 */
import { ControlError } from '../errors';
import type { LogFilter, LogRecord, LogTail } from '../log/log-tail';
import type { ControlRequest, StreamRoute } from './server';

const LEVEL_NUMBERS: Readonly<Record<string, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
};

export interface LogStreamQuery extends LogFilter {
  replay?: number;
  follow: boolean;
}

/** Parses the log stream's query string; throws a 400 `ControlError` naming the bad parameter. */
export function parseLogStreamQuery(query: URLSearchParams): LogStreamQuery {
  const bad = (message: string): never => {
    throw new ControlError('AGENT_ERR_BAD_REQUEST', 400, message);
  };
  const out: LogStreamQuery = { follow: true };
  const run = query.get('run');
  if (run !== null) {
    if (run === '' || run.length > 200) bad('`run` must be a run id');
    out.runId = run;
  }
  const level = query.get('level');
  if (level !== null) {
    const n = LEVEL_NUMBERS[level] ?? (/^\d{1,3}$/.test(level) ? Number(level) : undefined);
    out.minLevel = n ?? bad(`\`level\` must be one of ${Object.keys(LEVEL_NUMBERS).join(', ')} or a number`);
  }
  const replay = query.get('replay');
  if (replay !== null) {
    if (!/^\d{1,9}$/.test(replay)) bad('`replay` must be a count of lines (0 or more)');
    out.replay = Number(replay);
  }
  const follow = query.get('follow');
  if (follow !== null) {
    if (!['true', 'false', '1', '0'].includes(follow)) bad('`follow` must be true or false');
    out.follow = follow === 'true' || follow === '1';
  }
  return out;
}

/** A stream route serving `tail`: replay, then follow (see the query parameters above). */
export function logStreamRoute(tail: LogTail): StreamRoute {
  return {
    kind: 'stream',
    handler: (req: ControlRequest): AsyncIterable<LogRecord> => {
      const q = parseLogStreamQuery(req.query);
      const filter: LogFilter = {
        ...(q.runId === undefined ? {} : { runId: q.runId }),
        ...(q.minLevel === undefined ? {} : { minLevel: q.minLevel }),
      };
      if (!q.follow) {
        const records = tail.recent({ ...filter, ...(q.replay === undefined ? {} : { limit: q.replay }) });
        return (async function* () {
          yield* records;
        })();
      }
      return tail.follow({ ...filter, signal: req.signal, ...(q.replay === undefined ? {} : { replay: q.replay }) });
    },
  };
}
