/**
 * An in-memory network of link transports, for tests and simulations:
 * seeded (the same seed gives the same run), on an injected clock (use the
 * @rhizome/clock's VirtualClock for virtual time), with per-message loss,
 * duplication and random latency (which reorders), partitions between
 * groups of units, and detach/attach of a unit (a crash and a restart: a
 * detached unit receives nothing, and messages in flight to it are lost).
 *
 * Messages are deep-copied on send, as a real wire would, so sender and
 * receiver never share objects.
 */
import { seededRandom, systemClock, type Clock } from '@rhizome/clock';
import { RelationError } from './errors';
import type { LinkMessage } from './messages';
import type { LinkTransport } from './transport';

export interface SimLinkFaults {
  /** Probability that a message is lost, 0..1. */
  readonly loss: number;
  /** Probability that a message is delivered twice, 0..1. */
  readonly duplicate: number;
  /** Latency bounds in ms; each copy gets a uniform random latency, so messages reorder. */
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
}

export interface SimLinkNetworkOptions extends Partial<SimLinkFaults> {
  readonly seed?: number;
  readonly clock?: Clock;
}

export const DEFAULT_SIM_LINK_FAULTS: SimLinkFaults = Object.freeze({
  // A perfect network by default: tests opt into each fault explicitly.
  loss: 0,
  duplicate: 0,
  // A few ms of jitter, like a LAN.
  minDelayMs: 1,
  maxDelayMs: 5,
});

export interface SimLinkStats {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  partitioned: number;
}

interface Node {
  handler: ((from: string, message: unknown) => void) | undefined;
  reachability: Set<(unit: string, reachable: boolean) => void>;
  attached: boolean;
}

export class SimLinkNetwork {
  readonly clock: Clock;
  readonly random: () => number;
  readonly stats: SimLinkStats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, partitioned: 0 };
  private faults: SimLinkFaults;
  private readonly nodes = new Map<string, Node>();
  /** unit -> partition group; units in different groups cannot talk. Empty = fully connected. */
  private groups = new Map<string, number>();

  constructor(options: SimLinkNetworkOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.random = seededRandom(options.seed ?? 1);
    this.faults = resolveFaults({ ...DEFAULT_SIM_LINK_FAULTS, ...stripUndefined(options) });
  }

  setFaults(faults: Partial<SimLinkFaults>): void {
    this.faults = resolveFaults({ ...this.faults, ...faults });
  }

  /** Attaches a unit (again, after a simulated crash) and returns its transport. */
  attach(unit: string): LinkTransport {
    const node: Node = this.nodes.get(unit) ?? { handler: undefined, reachability: new Set(), attached: true };
    node.handler = undefined;
    node.reachability = new Set();
    node.attached = true;
    this.nodes.set(unit, node);
    return {
      send: (to, message) => this.send(unit, to, message),
      onMessage: (handler) => {
        node.handler = handler;
        return () => {
          if (node.handler === handler) node.handler = undefined;
        };
      },
      onReachability: (handler) => {
        node.reachability.add(handler);
        return () => node.reachability.delete(handler);
      },
    };
  }

  /** A crash: the unit receives nothing until attached again. */
  detach(unit: string): void {
    const node = this.nodes.get(unit);
    if (node) {
      node.attached = false;
      node.handler = undefined;
      node.reachability.clear();
    }
  }

  /** Splits the units into groups that cannot reach each other (units not listed form one more group). */
  partition(...groups: readonly (readonly string[])[]): void {
    const before = new Map(this.groups);
    this.groups = new Map();
    groups.forEach((g, i) => g.forEach((u) => this.groups.set(u, i + 1)));
    this.notifyReachability(before);
  }

  heal(): void {
    const before = new Map(this.groups);
    this.groups = new Map();
    this.notifyReachability(before);
  }

  canReach(a: string, b: string): boolean {
    return (this.groups.get(a) ?? 0) === (this.groups.get(b) ?? 0);
  }

  private notifyReachability(before: Map<string, number>): void {
    const units = [...this.nodes.keys()];
    for (const a of units) {
      const node = this.nodes.get(a)!;
      for (const b of units) {
        if (a === b) continue;
        const was = (before.get(a) ?? 0) === (before.get(b) ?? 0);
        const is = this.canReach(a, b);
        if (was !== is) for (const h of [...node.reachability]) h(b, is);
      }
    }
  }

  private send(from: string, to: string, message: LinkMessage): void {
    this.stats.sent += 1;
    if (!this.canReach(from, to)) {
      this.stats.partitioned += 1;
      return;
    }
    if (this.random() < this.faults.loss) {
      this.stats.lost += 1;
      return;
    }
    const copies = this.random() < this.faults.duplicate ? 2 : 1;
    if (copies === 2) this.stats.duplicated += 1;
    const wire = JSON.stringify(message);
    for (let i = 0; i < copies; i++) {
      const delay = this.faults.minDelayMs + this.random() * (this.faults.maxDelayMs - this.faults.minDelayMs);
      this.clock.setTimeout(() => {
        const node = this.nodes.get(to);
        if (!node?.attached || !node.handler || !this.canReach(from, to)) {
          this.stats.lost += 1;
          return;
        }
        this.stats.delivered += 1;
        node.handler(from, JSON.parse(wire) as unknown);
      }, delay);
    }
  }
}

function resolveFaults(f: SimLinkFaults): SimLinkFaults {
  const p = (x: number, what: string): void => {
    if (!(x >= 0 && x <= 1)) throw new RelationError('REL_ERR_OPTIONS', `${what} must be a probability within 0..1, got ${x}`);
  };
  p(f.loss, 'loss');
  p(f.duplicate, 'duplicate');
  if (!(f.minDelayMs >= 0 && f.maxDelayMs >= f.minDelayMs)) {
    throw new RelationError('REL_ERR_OPTIONS', `delays must satisfy 0 <= minDelayMs <= maxDelayMs, got ${f.minDelayMs}..${f.maxDelayMs}`);
  }
  return Object.freeze({ loss: f.loss, duplicate: f.duplicate, minDelayMs: f.minDelayMs, maxDelayMs: f.maxDelayMs });
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
