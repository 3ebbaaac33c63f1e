/**
 * The two systems under test behind one interface: N agents as real
 * processes on 127.0.0.1, driven the same way (start all, then every agent
 * but the seed joins the seed at once; poll each agent's member list; send
 * user events; SIGKILL one; make one leave gracefully).
 *
 * Rhizome agents run packages/gossip/test/fixtures/gossip-node.ts, bundled
 * once with esbuild into plain JS so no TypeScript loader sits in the
 * process (its memory and CPU are the node's own). Each warms its JIT at
 * start (gossip's warmUp(), before it reports ready; its CPU cost is
 * reported as warm_up_cpu_ms) unless the bench runs with --no-warm-up. Serf agents are the
 * `serf` binary, driven over its RPC protocol (serf-rpc.ts), which is what
 * its CLI speaks.
 */
import { spawn, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NodeProc, NODE_FIXTURE } from '../../packages/gossip/test/fixtures/node-proc';
import { SerfRpc } from './serf-rpc';

export type Status = 'alive' | 'suspect' | 'failed' | 'left' | 'leaving' | string;
export interface MemberRow {
  name: string;
  status: Status;
}

export interface AgentCluster {
  readonly system: 'rhizome' | 'serf';
  readonly n: number;
  readonly names: readonly string[];
  /** Start every agent (not yet joined) and wait until each is ready. */
  start(): Promise<void>;
  /** Every agent but agent 0 joins agent 0, all at once. */
  joinAll(): Promise<void>;
  members(i: number): Promise<MemberRow[]>;
  sendEvent(i: number, name: string): Promise<void>;
  /** Called with the agent index and event name whenever an agent delivers a user event. */
  onUserEvent(fn: (i: number, name: string) => void): void;
  kill(i: number): Promise<void>;
  leave(i: number): Promise<void>;
  pid(i: number): number | undefined;
  /** Mean CPU ms per agent spent warming up at start (null: the system has no such phase). */
  warmUpCpuMs(): number | null;
  stop(): Promise<void>;
}

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** `count` distinct ports that were free a moment ago (TCP and UDP, as Serf binds both). */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const p = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    if (p < 60000) ports.add(p); // keep clear of p+1 wraparound oddities
  }
  return [...ports];
}

// --- Rhizome ---------------------------------------------------------------

let bundled: string | undefined;

/** Bundles the node fixture to plain JS once per run. */
export function rhizomeEntry(): string {
  if (bundled) return bundled;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rhizome-bench-'));
  const out = path.join(dir, 'gossip-node.mjs');
  execFileSync(
    path.join(REPO_ROOT, 'node_modules/.bin/esbuild'),
    [
      NODE_FIXTURE,
      '--bundle',
      '--platform=node',
      '--format=esm',
      '--target=node20',
      `--outfile=${out}`,
      '--log-level=warning',
      "--banner:js=import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    ],
    { cwd: REPO_ROOT, stdio: 'inherit' },
  );
  bundled = out;
  return out;
}

export class RhizomeCluster implements AgentCluster {
  readonly system = 'rhizome' as const;
  readonly names: string[];
  private procs: NodeProc[] = [];
  private listeners: ((i: number, name: string) => void)[] = [];

  constructor(
    readonly n: number,
    private readonly profile: 'lan' | 'local',
    private readonly warmUp = true,
  ) {
    this.names = Array.from({ length: n }, (_, i) => `r${i}`);
  }

  async start(): Promise<void> {
    const entry = rhizomeEntry();
    // Start in small batches: 50 Node processes booting at once on 2 cores only measures the scheduler.
    for (let i = 0; i < this.n; i += 8) {
      const batch = await Promise.all(
        this.names.slice(i, i + 8).map((name) => NodeProc.start({ name, profile: this.profile, entry, retainLines: false, warmUp: this.warmUp }, 60_000)),
      );
      this.procs.push(...batch);
    }
    this.procs.forEach((p, i) =>
      p.onLine((l) => {
        if (l.type === 'user-event') for (const fn of this.listeners) fn(i, String(l['name']));
      }),
    );
  }

  async joinAll(): Promise<void> {
    const seed = this.procs[0]!.address;
    await Promise.all(this.procs.slice(1).map((p) => p.request({ cmd: 'join', seeds: [seed] }, 60_000).catch(() => {})));
  }

  async members(i: number): Promise<MemberRow[]> {
    return (await this.procs[i]!.members()).map((m) => ({ name: m.name, status: m.status }));
  }

  async sendEvent(i: number, name: string): Promise<void> {
    await this.procs[i]!.request({ cmd: 'sendEvent', name, payload: 'x' });
  }

  onUserEvent(fn: (i: number, name: string) => void): void {
    this.listeners.push(fn);
  }

  async kill(i: number): Promise<void> {
    await this.procs[i]!.kill('SIGKILL');
  }

  async leave(i: number): Promise<void> {
    await this.procs[i]!.request({ cmd: 'leave' });
  }

  pid(i: number): number | undefined {
    const p = this.procs[i];
    return p?.alive ? p.pid : undefined;
  }

  warmUpCpuMs(): number | null {
    if (!this.warmUp || this.procs.length === 0) return null;
    const costs = this.procs.map((p) => Number((p.ready['warmUp'] as { cpuMs?: number } | undefined)?.cpuMs ?? 0));
    return costs.reduce((a, b) => a + b, 0) / costs.length;
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.kill('SIGKILL')));
  }
}

// --- Serf ------------------------------------------------------------------

/** Installs the Debian `serf` package if the binary is missing. */
export function ensureSerf(): string {
  const find = (): string | undefined => {
    try {
      return execFileSync('sh', ['-c', 'command -v serf'], { encoding: 'utf8' }).trim() || undefined;
    } catch {
      return undefined;
    }
  };
  let bin = find();
  if (bin) return bin;
  console.log('serf not found: installing the Debian package (apt-get install -y serf)');
  try {
    execFileSync('apt-get', ['install', '-y', 'serf'], { stdio: 'inherit' });
  } catch {
    execFileSync('apt-get', ['update'], { stdio: 'inherit' });
    execFileSync('apt-get', ['install', '-y', 'serf'], { stdio: 'inherit' });
  }
  bin = find();
  if (!bin) throw new Error('serf is still missing after apt-get install -y serf');
  return bin;
}

interface SerfAgent {
  proc: ChildProcess;
  bind: string;
  rpcAddr: string;
  rpc?: SerfRpc;
  stream?: SerfRpc;
  exited: Promise<void>;
}

export class SerfCluster implements AgentCluster {
  readonly system = 'serf' as const;
  readonly names: string[];
  private agents: SerfAgent[] = [];
  private listeners: ((i: number, name: string) => void)[] = [];

  constructor(
    readonly n: number,
    private readonly profile: 'lan' | 'local',
    private readonly bin = ensureSerf(),
  ) {
    this.names = Array.from({ length: n }, (_, i) => `s${i}`);
  }

  async start(): Promise<void> {
    const ports = await freePorts(2 * this.n);
    for (let i = 0; i < this.n; i++) {
      const bind = `127.0.0.1:${ports[2 * i]}`;
      const rpcAddr = `127.0.0.1:${ports[2 * i + 1]}`;
      const proc = spawn(
        this.bin,
        ['agent', `-node=${this.names[i]}`, `-bind=${bind}`, `-rpc-addr=${rpcAddr}`, `-profile=${this.profile}`, '-log-level=err'],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      proc.stderr!.resume();
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      this.agents.push({ proc, bind, rpcAddr, exited });
    }
    await Promise.all(
      this.agents.map(async (a, i) => {
        a.rpc = await SerfRpc.connect(a.rpcAddr, 30_000);
        a.stream = await SerfRpc.connect(a.rpcAddr, 30_000);
        await a.stream.stream('user', (e) => {
          if (e.Event === 'user') for (const fn of this.listeners) fn(i, String(e.Name));
        });
      }),
    );
  }

  async joinAll(): Promise<void> {
    const seed = this.agents[0]!.bind;
    await Promise.all(this.agents.slice(1).map((a) => a.rpc!.join([seed]).catch(() => 0)));
  }

  async members(i: number): Promise<MemberRow[]> {
    return (await this.agents[i]!.rpc!.members()).map((m) => ({ name: m.Name, status: m.Status }));
  }

  async sendEvent(i: number, name: string): Promise<void> {
    await this.agents[i]!.rpc!.event(name, new TextEncoder().encode('x'));
  }

  onUserEvent(fn: (i: number, name: string) => void): void {
    this.listeners.push(fn);
  }

  async kill(i: number): Promise<void> {
    const a = this.agents[i]!;
    a.rpc?.close();
    a.stream?.close();
    if (a.proc.exitCode === null && a.proc.signalCode === null) process.kill(a.proc.pid!, 'SIGKILL');
    await a.exited;
  }

  async leave(i: number): Promise<void> {
    // Serf's RPC leave: broadcast the intent, wait for it (broadcast timeout), then the agent shuts down.
    await this.agents[i]!.rpc!.leave().catch(() => {});
  }

  warmUpCpuMs(): number | null {
    return null;
  }

  pid(i: number): number | undefined {
    const a = this.agents[i];
    return a && a.proc.exitCode === null && a.proc.signalCode === null ? a.proc.pid : undefined;
  }

  async stop(): Promise<void> {
    for (const a of this.agents) {
      a.rpc?.close();
      a.stream?.close();
      if (a.proc.exitCode === null && a.proc.signalCode === null) {
        try {
          process.kill(a.proc.pid!, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    await Promise.all(this.agents.map((a) => a.exited));
  }
}
