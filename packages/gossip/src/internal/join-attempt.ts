/**
 * One `join()` call: a push-pull join request to each seed, repeated until
 * every seed answered or refused (frames can be lost), and a verdict:
 * - resolved with the number of seeds that answered, as soon as every seed
 *   answered or refused with at least one answer, or at joinTimeout if some
 *   answered;
 * - rejected with GOSSIP_ERR_JOIN_FAILED when every seed refused the
 *   connection (nobody listens there) or none answered within joinTimeout;
 * - rejected with whatever `fail` is given (a newer join, a name conflict,
 *   a shutdown).
 */
import type { Clock, TimerHandle } from '@rhizome/clock';
import { GossipError } from '../errors';
import type { GossipProfile } from '../options';

export class JoinAttempt {
  private readonly answered = new Set<string>();
  private readonly refused = new Set<string>();
  private readonly timers: TimerHandle[] = [];
  private settled = false;
  readonly done: Promise<number>;
  private resolve!: (n: number) => void;
  private reject!: (err: Error) => void;

  constructor(
    private readonly seeds: readonly string[],
    private readonly clock: Clock,
    private readonly profile: GossipProfile,
    private readonly request: (seed: string) => void,
    /** Called once, when the attempt ends (either way). */
    private readonly onSettled: (ok: boolean) => void,
  ) {
    this.done = new Promise<number>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /** Send the requests and arm the retry and timeout timers (once the caller can route answers here). */
  start(): void {
    const { seeds, clock, profile, request } = this;
    for (const s of seeds) request(s);
    const retry = Math.max(profile.probeInterval, profile.joinTimeout / 8);
    const again = (): void => {
      if (this.settled) return;
      for (const s of seeds) if (!this.refused.has(s)) request(s);
      this.timers.push(clock.setTimeout(again, retry));
    };
    this.timers.push(clock.setTimeout(again, retry));
    this.timers.push(
      clock.setTimeout(() => {
        if (this.answered.size > 0) this.succeed();
        else
          this.fail(
            new GossipError(
              'GOSSIP_ERR_JOIN_FAILED',
              `no seed answered within ${profile.joinTimeout} ms (tried ${seeds.join(', ')}); check the addresses, that the seeds run, and that keyrings match`,
            ),
          );
      }, profile.joinTimeout),
    );
  }

  /** A seed answered our join request. */
  answeredBy(addr: string): void {
    this.answered.add(addr);
    this.check();
  }

  /** The transport reports that nobody listens at `addr` (refused or reset). */
  refusedBy(addr: string): void {
    if (!this.seeds.includes(addr)) return;
    this.refused.add(addr);
    this.check();
  }

  fail(err: Error): void {
    if (this.end(false)) this.reject(err);
  }

  private succeed(): void {
    if (this.end(true)) this.resolve(this.answered.size);
  }

  private check(): void {
    if (this.answered.size + this.refused.size < this.seeds.length) return;
    if (this.answered.size > 0) this.succeed();
    else
      this.fail(
        new GossipError('GOSSIP_ERR_JOIN_FAILED', `every seed refused the connection (${this.seeds.join(', ')}); are they running at those addresses?`),
      );
  }

  private end(ok: boolean): boolean {
    if (this.settled) return false;
    this.settled = true;
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.onSettled(ok);
    return true;
  }
}
