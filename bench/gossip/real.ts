/**
 * The real-process measurements, identical for both systems:
 *
 *   join_s        every agent but the seed joins the seed at once; time until
 *                 every agent lists all N members alive (member lists polled
 *                 every `pollMs` over each system's own control channel).
 *   join_known_s  the same, counting a member listed as `suspect` as known:
 *                 Serf's member list never shows suspicion (a suspect is
 *                 listed alive), so this is the like-for-like figure.
 *   rss_mb        mean resident set size per agent, after convergence.
 *   warm_up_cpu_ms  CPU per agent spent warming up at start, before the
 *                 joins (Rhizome's warmUp(); Serf, compiled ahead of time,
 *                 has none: null).
 *   idle_cpu_pct  CPU used by all agents together over an idle window, in %
 *                 of one core (from /proc/PID/stat; nobody polls meanwhile),
 *                 in the steady state: the window starts `steadyMs` after
 *                 convergence, once every agent has probed every other (a
 *                 probe round-robin covers N members in N probe intervals).
 *                 Rhizome's WebSocket transport opens one connection per
 *                 pair, on the pair's first probe, so until then its agents
 *                 spend CPU on handshakes that Serf's UDP never makes.
 *   idle_cpu_early_pct  the same, over a window `settleMs` after convergence
 *                 (that set-up included).
 *   event_p50_ms  10 user events, each from a different agent; latency is
 *   event_max_ms  send → the last agent delivering it; median and max.
 *   fail_s        SIGKILL one agent; time until every survivor lists it failed.
 *   leave_s       one agent leaves gracefully; time until every other live
 *                 agent lists it left. `leave_as_failed` counts observers
 *                 that listed it failed at any poll on the way (should be 0).
 */
import { readFileSync } from 'node:fs';
import type { AgentCluster, MemberRow } from './clusters';

export interface RealResult {
  join_s: number | null;
  fail_s: number | null;
  leave_s: number | null;
  event_p50_ms: number | null;
  event_max_ms: number | null;
  rss_mb: number | null;
  idle_cpu_pct: number | null;
  idle_cpu_early_pct: number | null;
  join_known_s: number | null;
  warm_up_cpu_ms: number | null;
  leave_as_failed: number;
  /** Agents that had not converged when join_s was taken at the timeout (stragglers). */
  join_stragglers: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const CLK_TCK = 100; // Linux USER_HZ

function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  } catch {
    return 0;
  }
}

function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Polls `observers` until `done(observer, members)` holds for each, or timeout.
 * Returns seconds from `t0` to the poll at which the last observer got there
 * (null on timeout), and the observers still missing.
 */
async function until(
  c: AgentCluster,
  observers: number[],
  done: (members: MemberRow[]) => boolean,
  t0: number,
  pollMs: number,
  timeoutMs: number,
  onPoll?: (i: number, members: MemberRow[]) => void,
): Promise<{ s: number | null; missing: number[] }> {
  const pending = new Set(observers);
  let last = t0;
  while (pending.size > 0) {
    if (performance.now() - t0 > timeoutMs) return { s: null, missing: [...pending] };
    const round = performance.now();
    await Promise.all(
      [...pending].map(async (i) => {
        let m: MemberRow[];
        try {
          m = await c.members(i);
        } catch {
          return; // a slow or busy agent: ask again next round
        }
        const at = performance.now();
        onPoll?.(i, m);
        if (done(m)) {
          pending.delete(i);
          last = Math.max(last, at);
        }
      }),
    );
    const wait = pollMs - (performance.now() - round);
    if (pending.size > 0 && wait > 0) await sleep(wait);
  }
  return { s: (last - t0) / 1000, missing: [] };
}

export interface RealOptions {
  pollMs: number;
  joinTimeoutMs: number;
  failTimeoutMs: number;
  idleWindowMs: number;
  /** The early idle window starts this long after convergence. */
  settleMs: number;
  /** The steady-state idle window (and rss) starts this long after convergence. */
  steadyMs: number;
  log: (msg: string) => void;
}

export async function measureReal(c: AgentCluster, o: RealOptions): Promise<RealResult> {
  const n = c.n;
  const all = [...Array(n).keys()];
  const r: RealResult = {
    join_s: null,
    fail_s: null,
    leave_s: null,
    event_p50_ms: null,
    event_max_ms: null,
    rss_mb: null,
    idle_cpu_pct: null,
    idle_cpu_early_pct: null,
    join_known_s: null,
    warm_up_cpu_ms: null,
    leave_as_failed: 0,
    join_stragglers: 0,
  };
  await c.start();
  r.warm_up_cpu_ms = c.warmUpCpuMs();
  o.log(`${c.system} N=${n}: ${n} agents started${r.warm_up_cpu_ms === null ? '' : ` (warm-up ${r.warm_up_cpu_ms.toFixed(0)} ms CPU each)`}`);

  // Join convergence.
  const t0 = performance.now();
  const joining = c.joinAll();
  const knownAt = new Map<number, number>();
  const join = await until(
    c,
    all,
    (m) => m.filter((x) => x.status === 'alive').length === n,
    t0,
    o.pollMs,
    o.joinTimeoutMs,
    (i, m) => {
      if (!knownAt.has(i) && m.filter((x) => x.status === 'alive' || x.status === 'suspect').length === n) {
        knownAt.set(i, performance.now());
      }
    },
  );
  r.join_known_s = knownAt.size === n ? (Math.max(...knownAt.values()) - t0) / 1000 : null;
  await joining;
  r.join_s = join.s;
  r.join_stragglers = join.missing.length;
  o.log(`${c.system} N=${n}: join ${join.s === null ? `timed out (${join.missing.length} stragglers)` : `${join.s.toFixed(2)} s`}`);
  if (join.s === null) {
    // Let stragglers catch up (Serf's push-pull) before the other measurements, bounded.
    await until(c, all, (m) => m.filter((x) => x.status === 'alive').length === n, performance.now(), 1000, 120_000);
  }

  // Idle CPU, nobody polling: early (connection set-up included), then steady, with memory.
  const pids = all.map((i) => c.pid(i)).filter((p): p is number => p !== undefined);
  const idleCpu = async (): Promise<number> => {
    const before = pids.map(cpuTicks);
    const w0 = performance.now();
    await sleep(o.idleWindowMs);
    const window = (performance.now() - w0) / 1000;
    const used = pids.reduce((s, p, k) => s + (cpuTicks(p) - before[k]!), 0) / CLK_TCK;
    return (100 * used) / window;
  };
  const converged = performance.now();
  await sleep(o.settleMs);
  r.idle_cpu_early_pct = await idleCpu();
  await sleep(Math.max(0, o.steadyMs - (performance.now() - converged)));
  r.rss_mb = pids.reduce((s, p) => s + rssKb(p), 0) / pids.length / 1024;
  r.idle_cpu_pct = await idleCpu();
  o.log(
    `${c.system} N=${n}: rss ${r.rss_mb.toFixed(1)} MB/agent, idle cpu ${r.idle_cpu_pct.toFixed(1)} % steady, ` +
      `${r.idle_cpu_early_pct.toFixed(1)} % early (all agents)`,
  );

  // User events: 10, one at a time, each from a different agent.
  const arrivals = new Map<string, { t0: number; got: Set<number>; last: number }>();
  c.onUserEvent((i, name) => {
    const e = arrivals.get(name);
    if (!e || e.got.has(i)) return;
    e.got.add(i);
    e.last = performance.now();
  });
  const lat: number[] = [];
  for (let k = 0; k < 10; k++) {
    const name = `bench-ev-${k}`;
    const e = { t0: performance.now(), got: new Set<number>(), last: 0 };
    arrivals.set(name, e);
    await c.sendEvent(k % n, name);
    const deadline = performance.now() + 30_000;
    while (e.got.size < n && performance.now() < deadline) await sleep(2);
    if (e.got.size === n) lat.push(e.last - e.t0);
    else o.log(`${c.system} N=${n}: event ${k} from agent ${k % n} never reached agents ${all.filter((i) => !e.got.has(i)).join(',')}`);
    await sleep(200);
  }
  if (lat.length > 0) {
    const sorted = [...lat].sort((a, b) => a - b);
    r.event_p50_ms = (sorted[Math.floor((sorted.length - 1) / 2)]! + sorted[Math.ceil((sorted.length - 1) / 2)]!) / 2;
    r.event_max_ms = sorted[sorted.length - 1]!;
  }
  o.log(`${c.system} N=${n}: events p50 ${r.event_p50_ms?.toFixed(1)} ms, max ${r.event_max_ms?.toFixed(1)} ms (${lat.length}/10 reached all)`);

  // Crash: SIGKILL the last agent.
  const victim = n - 1;
  const victimName = c.names[victim]!;
  const survivors = all.filter((i) => i !== victim);
  const tk = performance.now();
  await c.kill(victim);
  const fail = await until(
    c,
    survivors,
    (m) => m.find((x) => x.name === victimName)?.status === 'failed',
    tk,
    o.pollMs,
    o.failTimeoutMs,
  );
  r.fail_s = fail.s;
  o.log(`${c.system} N=${n}: SIGKILL detected by all survivors in ${fail.s?.toFixed(2) ?? 'timeout'} s`);

  // Graceful leave of another agent.
  if (n >= 3) {
    const leaver = n - 2;
    const leaverName = c.names[leaver]!;
    const observers = survivors.filter((i) => i !== leaver);
    const sawFailed = new Set<number>();
    const tl = performance.now();
    const leaving = c.leave(leaver);
    const left = await until(
      c,
      observers,
      (m) => m.find((x) => x.name === leaverName)?.status === 'left',
      tl,
      o.pollMs,
      o.failTimeoutMs,
      (i, m) => {
        if (m.find((x) => x.name === leaverName)?.status === 'failed') sawFailed.add(i);
      },
    );
    await leaving;
    r.leave_s = left.s;
    r.leave_as_failed = sawFailed.size;
    o.log(`${c.system} N=${n}: leave seen by all in ${left.s?.toFixed(2) ?? 'timeout'} s; ${sawFailed.size} observers saw it failed first`);
  }
  return r;
}
