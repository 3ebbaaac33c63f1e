/**
 * Refused frames, summarised per peer.
 *
 * A node refuses whole frames for a wrong or missing key, plaintext while it
 * has a keyring, encryption while it has none, another cluster's label, a
 * protocol version it does not speak, or bytes that are not a frame at all.
 * Such refusals come in floods (a misconfigured peer gossips several frames
 * a second, a hostile one far more), so they are never logged one by one:
 * they are counted per peer host and reported as one summary per peer per
 * `interval`. The first refusal from a peer that was quiet for an interval
 * is reported at once (a split shows up in the log immediately); the rest
 * of that interval's refusals follow as one summary when it ends.
 *
 * Why per host and not per connection: the transport names a peer by its
 * ip:ephemeral-port, which changes with every reconnection; the host is what
 * an operator can act on. Memory is bounded: at most MAX_PEERS hosts are
 * tracked, further ones are counted under OTHER_PEERS.
 */
import type { Clock, TimerHandle } from '@rhizome/clock';
import type { FrameErrorCode } from './codec';

/**
 * Why a frame (or a message in it) was refused: decodeFrame's codes, a
 * sender claiming a live member's name, a message that does not parse, or
 * a wire integer too far ahead (bounds.ts).
 */
export type RefusalCode =
  | Exclude<FrameErrorCode, 'GOSSIP_ERR_MESSAGE_TOO_LARGE' | 'GOSSIP_ERR_UNENCODABLE'>
  | 'GOSSIP_ERR_SPOOFED_SENDER'
  | 'GOSSIP_ERR_MALFORMED_MESSAGE'
  | 'GOSSIP_ERR_UNKNOWN_TYPE'
  | 'GOSSIP_ERR_IMPLAUSIBLE';

export interface RefusalSummary {
  /** The peer host (transport address without its port), or OTHER_PEERS. */
  readonly peer: string;
  /** Frames refused in this summary, all reasons together. */
  readonly total: number;
  /** Per reason: how many frames, and what to do about it (the first refusal's message). */
  readonly reasons: Readonly<Partial<Record<RefusalCode, { readonly count: number; readonly message: string }>>>;
  /** Clock times of the first and last refusal counted. */
  readonly since: number;
  readonly until: number;
}

/** Hosts tracked at once; a flood from more addresses is counted under OTHER_PEERS. */
export const MAX_PEERS = 1024;
export const OTHER_PEERS = '(other peers)';

interface PeerState {
  /** When this peer's last summary was reported (or -Infinity). */
  lastReport: number;
  pending: { total: number; since: number; until: number; reasons: Map<RefusalCode, { count: number; message: string }> } | null;
  timer: TimerHandle | null;
}

/** The host part of "host:port", "[v6]:port" or "v6:port"; other strings as they are. */
export function peerHost(remote: string): string {
  const m = /^\[?(.*?)\]?:\d+$/.exec(remote);
  return m && m[1] !== undefined && m[1] !== '' ? m[1] : remote;
}

export class RefusalReporter {
  private readonly peers = new Map<string, PeerState>();

  constructor(
    private readonly clock: Clock,
    private readonly interval: number,
    private readonly report: (summary: RefusalSummary) => void,
  ) {}

  refused(remote: string, code: RefusalCode, message: string): void {
    let peer = peerHost(remote);
    if (!this.peers.has(peer) && this.peers.size >= MAX_PEERS) peer = OTHER_PEERS;
    let state = this.peers.get(peer);
    if (state === undefined) {
      state = { lastReport: -Infinity, pending: null, timer: null };
      this.peers.set(peer, state);
    }
    const now = this.clock.now();
    state.pending ??= { total: 0, since: now, until: now, reasons: new Map() };
    const p = state.pending;
    p.total++;
    p.until = now;
    const r = p.reasons.get(code);
    if (r) r.count++;
    else p.reasons.set(code, { count: 1, message });
    if (state.timer !== null) return;
    const wait = state.lastReport + this.interval - now;
    if (wait <= 0) this.flush(peer);
    else state.timer = this.clock.setTimeout(() => this.flush(peer), wait);
  }

  /** Reports every pending summary now and forgets quiet peers (shutdown). */
  stop(): void {
    for (const [peer, state] of this.peers) {
      if (state.timer !== null) this.clock.clearTimeout(state.timer);
      state.timer = null;
      if (state.pending) this.flush(peer);
    }
    this.peers.clear();
  }

  private flush(peer: string): void {
    const state = this.peers.get(peer);
    if (!state) return;
    state.timer = null;
    const p = state.pending;
    if (p === null) {
      // Quiet for a whole interval: forget it, so the table holds only noisy peers.
      this.peers.delete(peer);
      return;
    }
    state.pending = null;
    state.lastReport = this.clock.now();
    // Look again after one interval: report what came meanwhile, or forget the peer.
    state.timer = this.clock.setTimeout(() => this.flush(peer), this.interval);
    const reasons: Partial<Record<RefusalCode, { count: number; message: string }>> = {};
    for (const [code, r] of p.reasons) reasons[code] = { count: r.count, message: r.message };
    this.report({ peer, total: p.total, reasons, since: p.since, until: p.until });
  }
}

/** One log line's text for a summary. */
export function describeRefusals(s: RefusalSummary): string {
  const parts = Object.entries(s.reasons).map(([code, r]) => `${r!.count}× ${code}: ${r!.message}`);
  return `gossip: refused ${s.total} frame(s) from ${s.peer}: ${parts.join('; ')}`;
}
