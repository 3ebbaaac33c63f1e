/**
 * rhizome-supervisor: keeps one agent running on a machine where systemd
 * does not run the host (containers, minimal VMs). It is copied to the
 * machine with the release and started detached (setsid) over SSH:
 *
 *   node supervisor.mjs DATA_DIR -- node agent.mjs agent --config DATA_DIR/agent.yaml
 *
 * Rules (systemd's Restart=on-failure, trimmed):
 *   - the agent's output goes to DATA_DIR/agent.out; the supervisor's own
 *     record is DATA_DIR/supervisor.json { pid, startedAt, restarts };
 *   - an agent that dies (a crash, SIGKILL) after it started serving (its
 *     agent.json names its pid) is started again after a backoff that
 *     doubles from 250 ms to 5 s, reset once an agent ran for 30 s;
 *   - an agent that exits before it ever served failed to start (a charm
 *     that does not load, a bad config): restarting would fail the same way,
 *     so the supervisor exits with code 3 and the error stays in agent.out;
 *   - more than MAX_QUICK_RESTARTS crashes in a row, each within 10 s of its
 *     start, also end the supervisor (code 4): a crash loop is reported, not
 *     hidden;
 *   - SIGTERM/SIGINT: the agent is sent SIGTERM (it leaves the mesh), given
 *     20 s, then SIGKILLed; the supervisor exits 0;
 *   - SIGUSR2 (`rhizome upgrade-model`): the same, but the agent is sent
 *     SIGUSR2, a stop for a restart (it stays in the mesh and leaves its
 *     workloads running): a new supervisor and agent start right after.
 * Standalone on purpose: no import of ours, so it loads in milliseconds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 5_000;
const STABLE_AFTER_MS = 30_000;
const QUICK_MS = 10_000;
const MAX_QUICK_RESTARTS = 20;
const STOP_GRACE_MS = 20_000;

const [dataDir, sep, command, ...args] = process.argv.slice(2);
if (!dataDir || sep !== '--' || !command) {
  process.stderr.write('usage: supervisor DATA_DIR -- COMMAND [ARGS...]\n');
  process.exit(2);
}

let child: ChildProcess | undefined;
let stopping = false;
let restarts = 0;
let quick = 0;
let backoff = BACKOFF_MIN_MS;

function record(): void {
  const file = join(dataDir!, 'supervisor.json');
  writeFileSync(`${file}.tmp`, `${JSON.stringify({ pid: process.pid, startedAt: Date.now(), restarts, agentPid: child?.pid ?? 0 })}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** Whether the agent with this pid got as far as serving (it writes agent.json once it does). */
function served(pid: number): boolean {
  try {
    return (JSON.parse(readFileSync(join(dataDir!, 'agent.json'), 'utf8')) as { pid?: number }).pid === pid;
  } catch {
    return false;
  }
}

function start(): void {
  const out = openSync(join(dataDir!, 'agent.out'), 'a', 0o600);
  const startedAt = Date.now();
  const c = spawn(command!, args, { stdio: ['ignore', out, out], cwd: dataDir! });
  child = c;
  record();
  c.on('exit', (code, signal) => {
    const pid = c.pid ?? 0;
    child = undefined;
    if (stopping) process.exit(0);
    const ran = Date.now() - startedAt;
    if (!served(pid)) {
      process.stderr.write(`agent exited (${code ?? signal}) before it served; not restarting (see agent.out)\n`);
      process.exit(3);
    }
    quick = ran < QUICK_MS ? quick + 1 : 0;
    if (quick > MAX_QUICK_RESTARTS) {
      process.stderr.write(`agent crashed ${quick} times in a row within ${QUICK_MS / 1000} s of starting; giving up\n`);
      process.exit(4);
    }
    if (ran > STABLE_AFTER_MS) backoff = BACKOFF_MIN_MS;
    process.stderr.write(`agent pid ${pid} exited (${code ?? signal}) after ${ran} ms; restarting in ${backoff} ms\n`);
    setTimeout(() => {
      if (stopping) process.exit(0);
      restarts += 1;
      start();
    }, backoff);
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
  });
}

function stop(signal: 'SIGTERM' | 'SIGUSR2'): void {
  if (stopping) return;
  stopping = true;
  const c = child;
  if (!c) process.exit(0);
  c.kill(signal);
  setTimeout(() => c.kill('SIGKILL'), STOP_GRACE_MS).unref();
}

process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGTERM'));
process.on('SIGUSR2', () => stop('SIGUSR2'));
process.on('SIGHUP', () => undefined);
start();
