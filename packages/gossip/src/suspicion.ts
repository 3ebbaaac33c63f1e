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
 *
 * Stream evidence (our addition): accusers that saw the suspect's host refuse
 * or reset a connection are counted apart. Once `needed` distinct ones have
 * reported it, the remaining time is cut to `timeout` from the first of them
 * (never extended): nobody listens there, and a live process, however slow,
 * does not refuse connections.
 */
import type { Clock, TimerHandle } from '@rhizome/clock';

export function remainingSuspicionTime(n: number, k: number, elapsed: number, min: number, max: number): number {
  const frac = Math.log(n + 1) / Math.log(k + 1);
  const raw = max - frac * (max - min);
  const timeout = Math.max(min, Math.floor(raw));
  return timeout - elapsed;
}

export interface EvidenceRule {
  /** Whether the first accuser has stream evidence. */
  evidence: boolean;
  /** Distinct accusers with evidence needed to cut the wait. */
  needed: number;
  /** The cut wait, from the moment the needed evidence is in. */
  timeout: number;
}

export class Suspicion {
  private n = 0;
  /**
   * Accusers counted so far: at most k + 1 (k is suspicionMult − 2), so a
   * short array. Every member holds a suspicion per suspect, and a large
   * simulation starts millions of them: two Sets each were much of its GC.
   */
  private readonly confirmations: string[];
  /** Accusers with stream evidence (none for a slow member: made on the first). */
  private witnesses: Set<string> | null = null;
  private timer: TimerHandle | null;
  private readonly start: number;
  private deadline: number;
  /** One closure per suspicion, not one per (re)scheduled timer. */
  private readonly fireFn = (): void => this.fire();

  constructor(
    from: string,
    private readonly k: number,
    private readonly min: number,
    private readonly max: number,
    private readonly clock: Clock,
    private readonly rule: EvidenceRule,
    private readonly onTimeout: (confirmations: number) => void,
  ) {
    this.confirmations = [from];
    this.start = clock.now();
    const timeout = k < 1 ? min : max;
    this.deadline = this.start + timeout;
    this.timer = clock.setTimeout(this.fireFn, timeout);
    if (rule.evidence) this.witness(from);
  }

  /**
   * Count an accusation from `from` (with stream `evidence` or not); true if
   * it was new information (and so worth re-gossiping).
   */
  confirm(from: string, evidence = false): boolean {
    if (this.timer === null) return false;
    const newWitness = evidence && this.witness(from);
    if (this.n >= this.k) return newWitness;
    if (this.confirmations.includes(from)) return newWitness;
    this.confirmations.push(from);
    this.n++;
    const remaining = remainingSuspicionTime(this.n, this.k, this.clock.now() - this.start, this.min, this.max);
    this.reschedule(this.clock.now() + Math.max(0, remaining));
    return true;
  }

  /** Record an evidence witness; true if new. Cuts the deadline once enough are in. */
  private witness(from: string): boolean {
    this.witnesses ??= new Set();
    if (this.witnesses.has(from)) return false;
    this.witnesses.add(from);
    if (this.witnesses.size >= this.rule.needed) this.reschedule(this.clock.now() + this.rule.timeout);
    return true;
  }

  /** Move the deadline earlier (never later). */
  private reschedule(at: number): void {
    if (this.timer === null || at >= this.deadline) return;
    this.deadline = at;
    this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(this.fireFn, Math.max(0, at - this.clock.now()));
  }

  get confirmationCount(): number {
    return this.n;
  }

  /** Enough independent stream evidence (refused/reset) is in: nobody listens there. */
  get hasEvidence(): boolean {
    return (this.witnesses?.size ?? 0) >= this.rule.needed;
  }

  /** When the suspicion started (clock time). */
  get startedAt(): number {
    return this.start;
  }

  /** After the timeout fired: wait until `at` instead (capped at start + max); false if no time is left. */
  rearm(at: number): boolean {
    const until = Math.min(at, this.start + this.max);
    if (until <= this.clock.now()) return false;
    this.deadline = until;
    this.timer = this.clock.setTimeout(this.fireFn, until - this.clock.now());
    return true;
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
