/**
 * Lifeguard local health awareness (memberlist awareness.go).
 *
 * A node that misses acks it should have received, or has to refute a
 * suspicion of itself, is more likely the slow party than its peers are. It
 * keeps a health score in [0, max - 1]: +1 on each refutation, + the number
 * of missing nacks after a failed probe, -1 on each successful probe. Probe
 * interval and probe timeout are multiplied by (score + 1), so an unhealthy
 * node slows its own failure detector down instead of accusing healthy peers.
 */
export class Awareness {
  private score = 0;

  constructor(private readonly max: number) {}

  applyDelta(delta: number): void {
    this.score = Math.min(this.max - 1, Math.max(0, this.score + delta));
  }

  getHealthScore(): number {
    return this.score;
  }

  scaleTimeout(ms: number): number {
    return ms * (this.score + 1);
  }
}
