/**
 * The retransmission timers of a unit's links (link-sender.ts): one per
 * link with unacknowledged messages, with exponential backoff from
 * `baseMs` to `maxMs`, paused while the link's unit cannot be reached and
 * reset when the link makes progress.
 */
import { KEEP_ALIVE, type Clock, type TimerHandle } from '@rhizome/clock';

export interface RetransmitOptions {
  readonly baseMs: number;
  readonly maxMs: number;
  /** Messages resent per link per retransmission. */
  readonly window: number;
  /** Period of the anti-entropy round: a sync offer on every link, so views converge even if every other sync was lost. */
  readonly syncIntervalMs: number;
}

export const DEFAULT_RETRANSMIT_OPTIONS: RetransmitOptions = Object.freeze({
  // A LAN round trip plus a run is well under this; retransmitting sooner
  // would mostly duplicate messages whose ack is on its way.
  baseMs: 500,
  // Capped so a link that heals without a reachability notice recovers within seconds.
  maxMs: 10_000,
  // Bounded, so a long outbox after a partition is not sent as one burst.
  window: 32,
  // One small message per link per half minute; catches what every event-driven sync missed.
  syncIntervalMs: 30_000,
});

interface LinkTimer {
  handle: TimerHandle | undefined;
  delay: number;
}

export class RetransmitTimers {
  private readonly timers = new Map<string, LinkTimer>();

  /** `retransmit(id)` runs when a link's timer fires while `live()` (the manager has not stopped). */
  constructor(
    private readonly clock: Clock,
    private readonly options: RetransmitOptions,
    private readonly live: () => boolean,
    private readonly retransmit: (id: string) => void,
  ) {}

  /** Arms the link's timer at its current delay unless it is armed; when it fires, the delay doubles (capped). */
  arm(id: string): void {
    let t = this.timers.get(id);
    if (!t) {
      t = { handle: undefined, delay: this.options.baseMs };
      this.timers.set(id, t);
    }
    if (t.handle !== undefined) return;
    const timer = t;
    // Due work: a reachable peer has not acknowledged a committed message yet.
    timer.handle = this.clock.setTimeout(
      () => {
        timer.handle = undefined;
        if (!this.live()) return;
        timer.delay = Math.min(this.options.maxMs, timer.delay * 2);
        this.retransmit(id);
      },
      timer.delay,
      KEEP_ALIVE,
    );
  }

  /** Disarms the link's timer, keeping its delay. */
  pause(id: string): void {
    const t = this.timers.get(id);
    if (t?.handle !== undefined) this.clock.clearTimeout(t.handle);
    if (t) t.handle = undefined;
  }

  /** Back to the shortest retransmission delay: the link just made progress (an ack) or healed. */
  resetBackoff(id: string): void {
    const t = this.timers.get(id);
    if (t) t.delay = this.options.baseMs;
  }

  /** Disarms and drops the link's timer. */
  forget(id: string): void {
    this.pause(id);
    this.timers.delete(id);
  }

  /** Links with a timer (armed or paused). */
  ids(): IterableIterator<string> {
    return this.timers.keys();
  }

  /** Disarms and drops every timer. */
  stop(): void {
    for (const t of this.timers.values()) if (t.handle !== undefined) this.clock.clearTimeout(t.handle);
    this.timers.clear();
  }
}
