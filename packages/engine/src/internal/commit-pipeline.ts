/**
 * Group commit bookkeeping: the commits handed to `onCommit` and not durable
 * yet, oldest first. `onCommit` is asked to make commits durable in order,
 * but its promises need not settle in order: a commit takes effect (or
 * fails) only once every commit before it has, so the engine sees commits
 * become durable strictly in order. The engine decides what taking effect
 * and failing mean (engine.ts).
 */
import type { KnowledgeBase } from '../knowledge-base';
import { Fifo } from './fifo';
import type { InboxItem } from './inbox-policy';
import type { RunCommit } from './run';

export interface InFlightCommit {
  readonly item: InboxItem;
  /** Relation events batched into the same run (resolved, or queued again, with it). */
  readonly batch: readonly InboxItem[];
  readonly commit: RunCommit;
  /** The head before this commit: where the engine goes back to if it fails. */
  readonly before: KnowledgeBase;
  /** Set when onCommit settles: undefined while the commit is in flight. */
  outcome: { readonly ok: true } | { readonly ok: false; readonly error: unknown } | undefined;
}

export class CommitPipeline {
  private readonly inFlight = new Fifo<InFlightCommit>();
  /** Wakes the engine's pump when the oldest commit in flight has settled (created only while it waits). */
  private waiter: { readonly promise: Promise<void>; readonly wake: () => void } | undefined;

  constructor(
    /** The oldest commit is durable (already taken out of the pipeline). */
    private readonly onDurable: (entry: InFlightCommit) => void,
    /** The oldest commit failed; the engine abandons it and every later one (takeAll). */
    private readonly onFailed: (entry: InFlightCommit, error: unknown) => void,
  ) {}

  /** Commits in flight. */
  get length(): number {
    return this.inFlight.length;
  }

  /** Adds a commit whose onCommit promise is `durable`: one reaction per commit. */
  push(entry: InFlightCommit, durable: Promise<void>): void {
    this.inFlight.push(entry);
    durable.then(
      () => this.settled(entry, { ok: true }),
      (error: unknown) => this.settled(entry, { ok: false, error }),
    );
  }

  /** Every commit in flight, oldest first, taken out (abandoned: their onCommit promises still settle later, and are ignored). */
  takeAll(): InFlightCommit[] {
    return this.inFlight.takeAll();
  }

  /** Resolves when the oldest commit in flight has settled. */
  nextSettle(): Promise<void> {
    if (this.waiter === undefined) {
      let wake!: () => void;
      const promise = new Promise<void>((resolve) => (wake = resolve));
      this.waiter = { promise, wake };
    }
    return this.waiter.promise;
  }

  /** onCommit settled for `entry`: the commits at the head that have settled take effect, in order. */
  private settled(entry: InFlightCommit, outcome: NonNullable<InFlightCommit['outcome']>): void {
    entry.outcome = outcome;
    let progressed = false;
    for (let head = this.inFlight.at(0); head?.outcome !== undefined; head = this.inFlight.at(0)) {
      progressed = true;
      if (head.outcome.ok) {
        this.inFlight.shift();
        this.onDurable(head);
      } else this.onFailed(head, head.outcome.error);
    }
    const waiter = this.waiter;
    if (progressed && waiter !== undefined) {
      this.waiter = undefined;
      waiter.wake();
    }
  }
}
