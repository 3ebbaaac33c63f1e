/**
 * Finding the cluster again: Serf's snapshot + rejoin and Consul's
 * retry_join, for an agent.
 *
 * The seeds an agent is started with are whoever was running when it was
 * started; after a restart they may all be down while the units that are up
 * now were never among them (a namenode restarted while every datanode was
 * down, then a datanode started while the namenode was down: each would stay
 * alone for good). So the agent
 *
 *   - remembers, in `<dataDir>/mesh.json`, the address it listened on and the
 *     addresses of the members it last knew (alive or failed; members that
 *     left gracefully are forgotten, as Serf does), rewritten after changes;
 *   - joins its seeds and the remembered members at start, and whenever it
 *     has no live peer, keeps trying them every `retryMs` (the list grows as
 *     members are learned), so two agents that each remember the other meet
 *     as soon as both run;
 *   - listens on its remembered port again when it was given port 0 (a
 *     local unit), so the addresses others remember of it stay true across
 *     restarts, as a fixed port does on a real machine.
 *
 * A partition between live members heals through push-pull's reconnect to
 * failed members (in @rhizome/gossip); this covers an agent that knows no
 * live member at all.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GossipNode, Member } from '@rhizome/gossip';
import { writeJsonAtomic } from '../agent-info';
import type { Logger } from '../log/logger';

export const MESH_MEMORY_FILE = 'mesh.json';
/** Remembered member addresses are bounded: a few dozen suffice to find any large cluster. */
export const MAX_REMEMBERED_PEERS = 64;

export interface MeshMemory {
  /** The gossip port this agent last listened on. */
  readonly port?: number;
  /** Addresses (HOST:PORT) of members it last knew, by member name. */
  readonly peers: Readonly<Record<string, string>>;
}

/** What `<dataDir>/mesh.json` holds; an absent or unreadable file is an empty memory (it is only a hint). */
export async function readMeshMemory(dataDir: string): Promise<MeshMemory> {
  try {
    const raw = JSON.parse(await readFile(join(dataDir, MESH_MEMORY_FILE), 'utf8')) as unknown;
    if (raw === null || typeof raw !== 'object') return { peers: {} };
    const { port, peers } = raw as { port?: unknown; peers?: unknown };
    const out: Record<string, string> = {};
    if (peers !== null && typeof peers === 'object') {
      for (const [name, addr] of Object.entries(peers).slice(0, MAX_REMEMBERED_PEERS)) {
        if (typeof addr === 'string' && addr.length <= 300) out[name] = addr;
      }
    }
    return Number.isInteger(port) && (port as number) > 0 && (port as number) < 65536 ? { port: port as number, peers: out } : { peers: out };
  } catch {
    return { peers: {} };
  }
}

export interface RejoinOptions {
  readonly node: GossipNode;
  readonly dataDir: string;
  readonly seeds: readonly string[];
  readonly remembered: MeshMemory;
  readonly log: Logger;
  /** How often an agent without a live peer tries again (ms, default 2000). */
  readonly retryMs?: number;
  /** How long after a membership change the memory file is rewritten (ms, default 1000). */
  readonly writeDelayMs?: number;
  /** Called after each successful join (the relation directory syncs from peers). */
  readonly onJoined?: () => void;
}

export class Rejoiner {
  private readonly peers = new Map<string, string>();
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private writeTimer: ReturnType<typeof setTimeout> | undefined;
  private writing: Promise<void> = Promise.resolve();
  private readonly offs: Array<() => void> = [];
  private failures = 0;
  private closed = false;

  constructor(private readonly o: RejoinOptions) {
    for (const [name, addr] of Object.entries(o.remembered.peers)) if (name !== o.node.name) this.peers.set(name, addr);
  }

  /** Joins once (waiting for that attempt), then keeps the memory and retries in the background while alone. */
  async start(): Promise<void> {
    const { node } = this.o;
    for (const ev of ['member-join', 'member-update', 'member-failed'] as const) {
      this.offs.push(node.on(ev, (m: Member) => this.learn(m)));
    }
    this.offs.push(node.on('member-leave', (m: Member) => this.forget(m)));
    this.offs.push(node.on('member-reap', (m: Member) => this.forget(m)));
    this.scheduleWrite();
    if (this.candidates().length === 0) return;
    await this.attempt();
    this.scheduleRetry();
  }

  /** Seeds first (the operator's word), then remembered and known members, without our own address. */
  candidates(): string[] {
    const own = this.o.node.address;
    const failed = this.o.node.members().filter((m) => m.status === 'failed').map((m) => m.address);
    return [...new Set([...this.o.seeds, ...this.peers.values(), ...failed])].filter((a) => a !== own);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.writeTimer) clearTimeout(this.writeTimer);
    for (const off of this.offs.splice(0)) off();
    await this.write();
  }

  private alone(): boolean {
    const self = this.o.node.name;
    return !this.o.node.members().some((m) => m.name !== self && m.status === 'alive');
  }

  private async attempt(): Promise<void> {
    const seeds = this.candidates();
    if (seeds.length === 0) return;
    try {
      const n = await this.o.node.join(seeds);
      this.o.log.info({ seeds, answered: n, attempts: this.failures + 1 }, 'joined the mesh');
      this.failures = 0;
      this.o.onJoined?.();
    } catch (err) {
      this.failures++;
      // The first failure says why; then one line per 30 attempts (a minute at the default), so the log stays bounded.
      if (this.failures === 1 || this.failures % 30 === 0) {
        this.o.log.warn({ err, seeds, attempts: this.failures }, `join failed (no live member answered); retrying every ${Math.round((this.o.retryMs ?? 2_000) / 1000)} s`);
      }
    }
  }

  private scheduleRetry(): void {
    if (this.closed) return;
    this.retryTimer = setTimeout(() => {
      if (this.closed || !this.o.node.running) return;
      const next = (): void => this.scheduleRetry();
      if (this.alone()) void this.attempt().then(next, next);
      else next();
    }, this.o.retryMs ?? 2_000);
    this.retryTimer.unref();
  }

  private learn(m: Member): void {
    if (m.name === this.o.node.name || this.peers.get(m.name) === m.address) return;
    if (!this.peers.has(m.name) && this.peers.size >= MAX_REMEMBERED_PEERS) return;
    this.peers.set(m.name, m.address);
    this.scheduleWrite();
  }

  private forget(m: Member): void {
    if (this.peers.delete(m.name)) this.scheduleWrite();
  }

  private scheduleWrite(): void {
    if (this.closed || this.writeTimer) return;
    this.writeTimer = setTimeout(() => {
      this.writeTimer = undefined;
      void this.write();
    }, this.o.writeDelayMs ?? 1_000);
    this.writeTimer.unref();
  }

  private write(): Promise<void> {
    const port = Number(/:(\d+)$/.exec(this.o.node.address)?.[1]);
    const memory: MeshMemory = { ...(port > 0 ? { port } : {}), peers: Object.fromEntries(this.peers) };
    this.writing = this.writing
      .then(() => writeJsonAtomic(join(this.o.dataDir, MESH_MEMORY_FILE), memory))
      .catch((err: unknown) => this.o.log.warn({ err }, `could not write ${MESH_MEMORY_FILE} (only a hint for rejoining)`));
    return this.writing;
  }
}
