/**
 * A FIFO queue with O(1) amortized removal at the head.
 *
 * The engine's inbox can hold tens of thousands of events (a burst of
 * submits, or group commit running ahead of the disk), and removing the
 * head of a plain array with `splice(0, n)` moves every element behind it:
 * at 20,000 queued events that was a fifth of a durable run's CPU time.
 * Here the head is an index into the array; the consumed prefix is dropped
 * in one copy once it is at least half of the array.
 */
export class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  /** The i-th item from the head (0 = the head), or undefined. */
  at(i: number): T | undefined {
    return i < 0 ? undefined : this.items[this.head + i];
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** Removes and returns the head. */
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.drop(1);
    return item;
  }

  /** Removes the first `n` items (fewer if there are fewer). */
  drop(n: number): void {
    const end = Math.min(this.items.length, this.head + n);
    // Release what was consumed now rather than at the next compaction.
    for (let i = this.head; i < end; i++) (this.items as (T | undefined)[])[i] = undefined;
    this.head = end;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  /** Puts `items` back in front of the head, in their order. */
  unshiftAll(items: readonly T[]): void {
    if (items.length === 0) return;
    this.items = [...items, ...this.items.slice(this.head)];
    this.head = 0;
  }

  /** Removes and returns every item, head first. */
  takeAll(): T[] {
    const out = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return out;
  }
}
