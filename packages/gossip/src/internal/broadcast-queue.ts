/**
 * Transmit-limited broadcast queue (memberlist queue.go).
 *
 * Broadcasts ride on every probe, ack and gossip frame. Each is sent at most
 * `limit()` times (retransmitMult × ceil(log10(N + 1))), fewest-sent first and
 * newest first among equals, so fresh news spreads before old news repeats.
 * A broadcast with a key (a member name) invalidates any queued broadcast
 * with the same key: only the newest news about a member is worth sending.
 * `onDone` runs when a broadcast was sent its last time or was invalidated
 * (leave() waits on it). Memory is bounded by `maxQueued`: beyond it the
 * most-sent broadcasts are dropped first.
 */
export interface Broadcast {
  /** Member name (or other identity) this news is about; newer news with the same key replaces it. */
  readonly key: string | null;
  readonly msg: unknown;
  /** Encoded size estimate in bytes. */
  readonly size: number;
  onDone?: () => void;
}

/** What a removed entry holds until compaction: the message itself is let go at once. */
const REMOVED: Broadcast = Object.freeze({ key: null, msg: null, size: 0 });

interface Entry {
  b: Broadcast;
  transmits: number;
  id: number;
  /** Removed (replaced, sent its last time, or dropped): skipped, and compacted away in bulk. */
  dead: boolean;
  /** Taken by the `take` in progress (moves up one transmit count when it ends). */
  taken: boolean;
}

/** Whether `a` goes out before `b`: fewer transmits first, newest (highest id) first among equals. */
function before(a: Entry, b: Entry): boolean {
  return a.transmits < b.transmits || (a.transmits === b.transmits && a.id > b.id);
}

/**
 * Kept in sending order at all times, so `take` never sorts: `entries` runs
 * from the last to go out to the next (reversed, so that a new broadcast,
 * which always goes first, is a push). A take raises the transmit count of
 * what it took, which keeps those in order among themselves; one linear
 * merge with the rest restores the whole order. Re-sorting the queue on
 * every take was a tenth of a large simulation's CPU.
 */
export class BroadcastQueue {
  private entries: Entry[] = [];
  private readonly byKey = new Map<string, Entry>();
  private nextId = 0;
  /**
   * A lower bound on the size of every queued broadcast (the smallest ever
   * queued): `take` stops walking once less than that is left of its budget.
   * Under a flood (thousands queued) that is the difference between a few
   * dozen entries per frame and the whole queue.
   */
  private minSize = Infinity;
  /** Dead entries still in `entries` (removal is lazy: O(1) instead of indexOf + splice). */
  private deadCount = 0;
  /** Bytes (estimated) returned by the last `take`. */
  lastTakenBytes = 0;

  constructor(
    private readonly limit: () => number,
    private readonly maxQueued = 4096,
    /** Called after each queue(): lets the node gossip fresh news without waiting a whole interval. */
    private readonly onQueued: () => void = () => {},
  ) {}

  get length(): number {
    return this.entries.length - this.deadCount;
  }

  queue(b: Broadcast): void {
    if (b.key !== null) {
      const old = this.byKey.get(b.key);
      if (old) this.remove(old).onDone?.();
    }
    // Never sent and the newest: it goes out first (the end of `entries`).
    const e: Entry = { b, transmits: 0, id: this.nextId++, dead: false, taken: false };
    if (b.size < this.minSize) this.minSize = b.size;
    this.entries.push(e);
    if (b.key !== null) this.byKey.set(b.key, e);
    if (this.length > this.maxQueued) {
      this.compact();
      // The most-sent go: they are at the start.
      const dropped = this.entries.splice(0, this.entries.length - this.maxQueued);
      for (const d of dropped) {
        if (d.b.key !== null && this.byKey.get(d.b.key) === d) this.byKey.delete(d.b.key);
        d.b.onDone?.();
      }
    }
    this.onQueued();
  }

  /**
   * Up to `maxBytes` of broadcasts (counting `overheadPerMsg` each), fewest-sent
   * and newest first; each returned one counts as transmitted once more.
   * Appended to `out` when given (no array per take).
   */
  take(maxBytes: number, out: unknown[] = [], overheadPerMsg = 2): unknown[] {
    this.lastTakenBytes = 0;
    if (this.length === 0) return out;
    const limit = this.limit();
    let used = 0;
    const taken: Entry[] = [];
    const smallest = this.minSize + overheadPerMsg;
    const entries = this.entries;
    for (let i = entries.length - 1; i >= 0; i--) {
      if (used + smallest > maxBytes) break; // nothing further can fit
      const e = entries[i] as Entry;
      if (e.dead) continue;
      const cost = e.b.size + overheadPerMsg;
      if (used + cost > maxBytes) continue;
      used += cost;
      out.push(e.b.msg);
      e.transmits++;
      e.taken = true;
      taken.push(e);
    }
    this.lastTakenBytes = used;
    if (taken.length === 0) return out;
    this.reorder(taken);
    for (const e of taken) if (e.transmits >= limit) this.remove(e).onDone?.();
    return out;
  }

  /** Drop everything (shutdown). */
  reset(): void {
    const all = this.entries;
    this.entries = [];
    this.deadCount = 0;
    this.byKey.clear();
    for (const e of all) if (!e.dead) e.b.onDone?.();
  }

  /**
   * Merge the entries just taken (`taken`, in sending order, each one
   * transmit further) back among the others; dead entries are left out on
   * the way. O(queue), no comparator sort.
   */
  private reorder(taken: Entry[]): void {
    const entries = this.entries;
    const merged: Entry[] = [];
    // Both runs from the last to go out: the untaken from the start of `entries`, the taken from their end.
    let a = taken.length - 1;
    let i = 0;
    const n = entries.length;
    for (;;) {
      while (i < n && ((entries[i] as Entry).taken || (entries[i] as Entry).dead)) i++;
      if (i >= n || a < 0) break;
      const x = taken[a] as Entry;
      const y = entries[i] as Entry;
      if (before(x, y)) {
        merged.push(y);
        i++;
      } else {
        merged.push(x);
        a--;
      }
    }
    for (; i < n; i++) {
      const y = entries[i] as Entry;
      if (!y.taken && !y.dead) merged.push(y);
    }
    for (; a >= 0; a--) merged.push(taken[a] as Entry);
    // Only now: the scan above tells the taken by this flag until its end.
    for (const x of taken) x.taken = false;
    this.entries = merged;
    this.deadCount = 0;
  }

  /** Marks `e` removed and returns its broadcast (whose onDone the caller runs). */
  private remove(e: Entry): Broadcast {
    const b = e.b;
    if (e.dead) return REMOVED;
    e.dead = true;
    e.b = REMOVED;
    this.deadCount++;
    if (b.key !== null && this.byKey.get(b.key) === e) this.byKey.delete(b.key);
    // Compact once the dead are half the array: amortised O(1) per removal.
    if (this.deadCount > 32 && 2 * this.deadCount > this.entries.length) this.compact();
    return b;
  }

  private compact(): void {
    if (this.deadCount === 0) return;
    this.entries = this.entries.filter((e) => !e.dead);
    this.deadCount = 0;
  }
}
