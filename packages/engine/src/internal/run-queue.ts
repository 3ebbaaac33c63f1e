/**
 * The handlers waiting in a run: a binary heap ordered by priority (higher
 * first), then declaration order, with a name index for `has` and removal.
 * Removal is lazy (the entry is marked and skipped when it reaches the top),
 * so adding, taking and dropping one handler each cost O(log K): a run that
 * queues K handlers costs O(K log K), where a sorted array with splice/shift
 * cost O(K²).
 */
import type { EngineEvent } from '../events';
import type { CompiledHandler } from '../handler';

export interface QueueEntry {
  readonly handler: CompiledHandler;
  readonly event: EngineEvent | undefined;
  /** Queued by the run's triggering event (not by a raised one or by facts). */
  readonly fromTrigger: boolean;
  readonly queuedBy: string;
  readonly because: string[];
  /** Set when the entry was dropped; the heap skips it. */
  removed?: boolean;
}

export class RunQueue {
  private readonly heap: QueueEntry[] = [];
  private readonly live = new Map<string, QueueEntry>();

  get size(): number {
    return this.live.size;
  }

  has(name: string): boolean {
    return this.live.has(name);
  }

  get(name: string): QueueEntry | undefined {
    return this.live.get(name);
  }

  /** Adds an entry unless its handler is already queued. */
  add(entry: QueueEntry): void {
    if (this.live.has(entry.handler.name)) return;
    this.live.set(entry.handler.name, entry);
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!.handler, heap[parent]!.handler)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  /** Takes the first live entry. */
  shift(): QueueEntry | undefined {
    for (;;) {
      const top = this.pop();
      if (top === undefined) return undefined;
      if (top.removed) continue;
      this.live.delete(top.handler.name);
      return top;
    }
  }

  /** Drops a queued handler; true if it was queued. */
  remove(name: string): boolean {
    const e = this.live.get(name);
    if (!e) return false;
    e.removed = true;
    this.live.delete(name);
    // Keep dead entries from piling up when most of the queue is dropped.
    if (this.heap.length > 64 && this.heap.length > 2 * this.live.size) this.compact();
    return true;
  }

  /** Names of the queued handlers in run order (for error messages: O(K log K)). */
  handlerNames(): string[] {
    return [...this.live.values()].sort((a, b) => (before(a.handler, b.handler) ? -1 : 1)).map((e) => e.handler.name);
  }

  private pop(): QueueEntry | undefined {
    const heap = this.heap;
    if (heap.length === 0) return undefined;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l]!.handler, heap[m]!.handler)) m = l;
        if (r < heap.length && before(heap[r]!.handler, heap[m]!.handler)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }

  private compact(): void {
    const kept = [...this.live.values()];
    this.heap.length = 0;
    this.live.clear();
    for (const e of kept) this.add(e);
  }
}

function before(a: CompiledHandler, b: CompiledHandler): boolean {
  return a.priority !== b.priority ? a.priority > b.priority : a.index < b.index;
}
