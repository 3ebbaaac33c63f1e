/**
 * A Lamport clock (Serf lamport.go): `increment` for a local event,
 * `witness` for a time seen in a message, so every event a node sends is
 * ordered after every event it has seen.
 */
export class LamportClock {
  private counter = 0;

  time(): number {
    return this.counter;
  }

  increment(): number {
    return ++this.counter;
  }

  witness(v: number): void {
    if (v >= this.counter) this.counter = v + 1;
  }
}
