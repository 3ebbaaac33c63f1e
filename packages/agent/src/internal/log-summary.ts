/**
 * Bounded logging of lines a stranger can provoke at will (a malformed
 * message, an oversized or text frame, a refused connection): each would
 * otherwise cost one log line, so anyone who can reach the gossip port
 * could write megabytes per second into agent.log. (Refused frames are
 * already counted and summarised per peer by the gossip node itself,
 * `GOSSIP_ERR_FRAMES_REFUSED`; this bounds everything else, and those
 * summaries too should a node report them too often.)
 *
 * Lines are grouped by (level, peer host, kind); the kind is the line's
 * `code` field or, without one, its message up to the first detail. In each
 * interval the first line of a group is written as is and the rest are only
 * counted; at the end of the interval each group that had more writes one
 * summary line (`suppressed: N`). So a group costs at most two lines per
 * interval, and at most `maxGroups` groups are tracked per interval (further
 * ones share one overflow group): the line rate is bounded whatever arrives.
 * Info and debug lines pass through (membership news is not provoked by
 * strangers, and debug is off unless an operator asks).
 */
import type { GossipLogger } from '@rhizome/gossip';

export interface SummaryOptions {
  /** Length of a summary interval (default 10 s). */
  readonly intervalMs?: number;
  /** Groups tracked per interval; more share one overflow group (default 64). */
  readonly maxGroups?: number;
}

export const DEFAULT_SUMMARY_OPTIONS = Object.freeze({ intervalMs: 10_000, maxGroups: 64 });

type Level = 'warn' | 'error';

interface Group {
  readonly level: Level;
  readonly peer: string;
  readonly kind: string;
  readonly sample: string;
  suppressed: number;
  /** Sum of the suppressed lines' numeric `total` fields (a node's refused-frame summaries count frames). */
  suppressedTotal: number;
}

export interface SummarizingLogger extends GossipLogger {
  /** Writes the pending summaries now (the timer does it every interval). */
  flush(): void;
  /** Flushes and stops the timer. */
  close(): void;
}

/** The host part of an address-like field ("127.0.0.1:4000", "ws://[::1]:80/x" -> "127.0.0.1", "::1"). */
function peerOf(obj: object): string {
  const o = obj as { peer?: unknown; remote?: unknown; from?: unknown; to?: unknown };
  const raw = [o.peer, o.remote, o.to, o.from].find((v): v is string => typeof v === 'string');
  if (raw === undefined) return '-';
  const bare = raw.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  const v6 = /^\[([^\]]+)\]/.exec(bare);
  if (v6) return v6[1]!;
  const colon = bare.lastIndexOf(':');
  return colon > 0 && bare.indexOf(':') === colon ? bare.slice(0, colon) : bare;
}

function kindOf(obj: object, msg: string): string {
  const code = (obj as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  // "gossip: dropped frame: <details>" -> "gossip: dropped frame"
  const cut = msg.indexOf(':', msg.startsWith('gossip: ') ? 8 : 0);
  return (cut > 0 ? msg.slice(0, cut) : msg).slice(0, 80);
}

export function summarizingLogger(inner: GossipLogger, options: SummaryOptions = {}): SummarizingLogger {
  const intervalMs = options.intervalMs ?? DEFAULT_SUMMARY_OPTIONS.intervalMs;
  const maxGroups = options.maxGroups ?? DEFAULT_SUMMARY_OPTIONS.maxGroups;
  let groups = new Map<string, Group>();

  const flush = (): void => {
    const done = groups;
    groups = new Map();
    for (const g of done.values()) {
      if (g.suppressed === 0) continue;
      inner[g.level](
        { peer: g.peer, kind: g.kind, suppressed: g.suppressed, ...(g.suppressedTotal > 0 ? { suppressedTotal: g.suppressedTotal } : {}), intervalMs },
        `${g.sample} (and ${g.suppressed} more like it${g.peer === '*' ? ' from other peers' : ` from ${g.peer}`} in the last ${Math.round(intervalMs / 1000)} s, not logged one by one)`,
      );
    }
  };
  const timer = setInterval(flush, intervalMs);
  timer.unref();

  const line =
    (level: Level) =>
    (obj: object, msg: string): void => {
      let peer = peerOf(obj);
      let kind = kindOf(obj, msg);
      let key = `${level}|${peer}|${kind}`;
      let g = groups.get(key);
      if (g === undefined && groups.size >= maxGroups) {
        peer = '*';
        kind = '*';
        key = `${level}|*|*`;
        g = groups.get(key);
      }
      if (g === undefined) {
        groups.set(key, { level, peer, kind, sample: msg.slice(0, 300), suppressed: 0, suppressedTotal: 0 });
        inner[level](obj, msg);
        return;
      }
      g.suppressed++;
      const total = (obj as { total?: unknown }).total;
      if (typeof total === 'number' && Number.isFinite(total)) g.suppressedTotal += total;
    };

  return {
    debug: (obj, msg) => inner.debug(obj, msg),
    info: (obj, msg) => inner.info(obj, msg),
    warn: line('warn'),
    error: line('error'),
    flush,
    close: () => {
      clearInterval(timer);
      flush();
    },
  };
}
