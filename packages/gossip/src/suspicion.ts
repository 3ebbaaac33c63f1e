/**
 * Lifeguard suspicion timer (memberlist suspicion.go).
 *
 * When a member is suspected, a timer starts at `max`. Every *independent*
 * confirmation (a suspect message from a node that had not yet accused it)
 * lowers the remaining time along a log curve, so with k confirmations it
 * reaches `min`:
 *
 *   timeout(n) = max(min, max − log(n + 1) / log(k + 1) × (max − min))
 *
 * k is the number of confirmations we expect (suspicionMult − 2, or 0 in a
 * cluster too small to provide them, in which case the timer starts at min).
 * Invariants: the timeout never drops below min; the same accuser counts
 * once; after k confirmations further ones are ignored (and not re-gossiped).
 */
import type { Clock, TimerHandle } from './clock';

export function remainingSuspicionTime(n: number, k: number, elapsed: number, min: number, max: number): number {
  const frac = Math.log(n + 1) / Math.log(k + 1);
  const raw = max - frac * (max - min);
  const timeout = Math.max(min, Math.floor(raw));
  return timeout - elapsed;
}

export class Suspicion {
  private n = 0;
  private readonly confirmations = new Set<string>();
  private timer: TimerHandle | null;
  private readonly start: number;

  constructor(
    from: string,
    private readonly k: number,
    private readonly min: number,
    private readonly max: number,
    private readonly clock: Clock,
    private readonly onTimeout: (confirmations: number) => void,
  ) {
    this.confirmations.add(from);
    this.start = clock.now();
    const timeout = k < 1 ? min : max;
    this.timer = clock.setTimeout(() => this.fire(), timeout);
  }

  /** Count an accusation from `from`; true if it was new (and so worth re-gossiping). */
  confirm(from: string): boolean {
    if (this.n >= this.k || this.timer === null) return false;
    if (this.confirmations.has(from)) return false;
    this.confirmations.add(from);
    this.n++;
    const remaining = remainingSuspicionTime(this.n, this.k, this.clock.now() - this.start, this.min, this.max);
    this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => this.fire(), Math.max(0, remaining));
    return true;
  }

  get confirmationCount(): number {
    return this.n;
  }

  cancel(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private fire(): void {
    this.timer = null;
    this.onTimeout(this.n);
  }
}
