/**
 * A Lamport clock (Serf lamport.go): `increment` for a local event,
 * `witness` for a time seen in a message, so every event a node sends is
 * ordered after every event it has seen. `time()` is the stamp the next
 * local event gets. Clock values exchanged in push-pull are merged with
 * `catchUp` (max, no +1), so clocks do not creep upwards without events.
 */
export class LamportClock {
  private counter = 0;

  time(): number {
    return this.counter;
  }

  increment(): number {
    return ++this.counter;
  }

  /** A message stamped `v` was seen: our next stamp must be later. */
  witness(v: number): void {
    if (v >= this.counter) this.counter = v + 1;
  }

  /** A peer's clock value (its next stamp) was seen: catch up without creeping ahead. */
  catchUp(clock: number): void {
    if (clock > this.counter) this.counter = clock;
  }
}
