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
}

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
    const e: Entry = { b, transmits: 0, id: this.nextId++, dead: false };
    if (b.size < this.minSize) this.minSize = b.size;
    this.entries.push(e);
    if (b.key !== null) this.byKey.set(b.key, e);
    if (this.length > this.maxQueued) {
      this.compact();
      this.sort();
      const dropped = this.entries.splice(this.maxQueued);
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
   */
  take(maxBytes: number, overheadPerMsg = 2): unknown[] {
    this.lastTakenBytes = 0;
    if (this.length === 0) return [];
    this.sort();
    const limit = this.limit();
    const out: unknown[] = [];
    let used = 0;
    const finished: Entry[] = [];
    const smallest = this.minSize + overheadPerMsg;
    for (const e of this.entries) {
      if (used + smallest > maxBytes) break; // nothing further can fit
      if (e.dead) continue;
      const cost = e.b.size + overheadPerMsg;
      if (used + cost > maxBytes) continue;
      used += cost;
      out.push(e.b.msg);
      e.transmits++;
      if (e.transmits >= limit) finished.push(e);
    }
    this.lastTakenBytes = used;
    for (const e of finished) this.remove(e).onDone?.();
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

  private sort(): void {
    this.entries.sort((a, b) => a.transmits - b.transmits || b.id - a.id);
  }
}
