/**
 * The boundary for untrusted input: every frame is decoded by codec.ts
 * (size, label, keyring, version), its sender checked against the member
 * table (a name owned by another live member is refused as spoofed), and
 * every message parsed by messages.ts before the node dispatches it.
 * Whatever is refused is counted in `stats().dropped` and reported by the
 * refusal reporter; the node keeps running. Trusted in-process envelopes
 * (SimNetwork `trusted`) skip decoding and parsing, not the sender check.
 */
import type { Keyring } from '../keyring';
import { MessageError } from '../errors';
import type { Membership } from '../state';
import type { NodeStats } from '../stats';
import type { DirectEnvelope, Transport } from '../transport';
import { decodeFrame, FrameError, type Envelope } from './codec';
import type { NodeContext } from './context';
import { parseMessage, type Message } from './messages';
import type { NameConflicts } from './name-conflicts';
import type { RefusalCode, RefusalReporter } from './refusals';
import type { PeerVersions } from './versions';

const FRAME_DROP_FIELD = {
  GOSSIP_ERR_FRAME_TOO_LARGE: 'tooLarge',
  GOSSIP_ERR_MALFORMED_FRAME: 'malformed',
  GOSSIP_ERR_VERSION: 'version',
  GOSSIP_ERR_DECRYPT: 'decrypt',
  GOSSIP_ERR_PLAINTEXT_REFUSED: 'plaintextRefused',
  GOSSIP_ERR_NO_KEYRING: 'plaintextRefused',
  GOSSIP_ERR_LABEL: 'label',
} as const;

export interface FrameReceiverDeps {
  readonly address: string;
  /** Read at each frame: the profile (maxFrameSize) and whether the node still runs. */
  readonly ctx: NodeContext;
  readonly keyring: Keyring | undefined;
  readonly label: string;
  readonly transport: Transport;
  readonly counters: NodeStats;
  readonly refusals: RefusalReporter;
  readonly peerVersions: PeerVersions;
  readonly membership: Membership;
  readonly conflicts: NameConflicts;
  /** Handle one parsed message of an accepted frame. */
  readonly dispatch: (msg: Message, env: Envelope) => void;
}

export class FrameReceiver {
  /** The transport address of the frame being handled (for refusal reports), or null. */
  receivingFrom: string | null = null;

  constructor(private readonly d: FrameReceiverDeps) {}

  /** An encoded frame from the transport. */
  frame(frame: Uint8Array, remote: string): void {
    const d = this.d;
    if (!d.ctx.running()) return;
    d.counters.framesIn++;
    d.counters.bytesIn += frame.byteLength;
    let env: Envelope;
    try {
      env = decodeFrame(frame, { maxFrameSize: d.ctx.profile.maxFrameSize, keyring: d.keyring, label: d.label });
    } catch (err) {
      const code = err instanceof FrameError ? err.code : 'GOSSIP_ERR_MALFORMED_FRAME';
      const field = (FRAME_DROP_FIELD as Record<string, keyof NodeStats['dropped']>)[code] ?? 'malformed';
      d.counters.dropped[field]++;
      d.refusals.refused(remote, code as RefusalCode, (err as Error).message);
      return;
    }
    d.peerVersions.note(env.addr, env.pmax);
    this.accept(env, remote, false);
  }

  /** A trusted in-process envelope (SimNetwork `trusted`): already typed messages, nothing to decode or parse. */
  envelope(env: DirectEnvelope, remote: string): void {
    if (!this.d.ctx.running()) return;
    this.d.counters.framesIn++;
    this.accept(env as Envelope, remote, true);
  }

  /** A decoded envelope: check its sender, then parse and dispatch each message. */
  private accept(env: Envelope, remote: string, trusted: boolean): void {
    const d = this.d;
    // A frame whose sender claims a name owned by a different live member (or ours) is refused.
    // By id and column reads: this runs for every frame (no member view allocated).
    const ms = d.membership;
    const claimed = ms.idOf(env.from);
    if (claimed !== undefined && ms.addrOf(claimed) !== env.addr && (claimed === ms.localIdNumber || ms.isLive(claimed))) {
      const owner = ms.addrOf(claimed);
      d.counters.dropped.spoofed++;
      d.refusals.refused(remote, 'GOSSIP_ERR_SPOOFED_SENDER', `frame from ${env.addr} claims the name ${JSON.stringify(env.from)}, owned by the live member at ${owner}`);
      d.conflicts.notice(env.from, owner, env.addr);
      return;
    }
    // Any frame from a suspect proves it runs (slow, not dead).
    if (claimed !== undefined && ms.isSuspect(claimed)) ms.heardFrom(ms.ref(claimed));
    // The connection it came on leads back to its sender: the transport may reply over it (one handshake per pair).
    if (remote !== env.addr && env.addr !== d.address) d.transport.peerAddress?.(remote, env.addr);
    for (const raw of env.msgs) {
      let msg: Message;
      try {
        msg = trusted ? (raw as Message) : parseMessage(raw);
      } catch (err) {
        const unknown = err instanceof MessageError && err.code === 'GOSSIP_ERR_UNKNOWN_TYPE';
        if (unknown) d.counters.dropped.unknownType++;
        else d.counters.dropped.malformed++;
        d.refusals.refused(remote, unknown ? 'GOSSIP_ERR_UNKNOWN_TYPE' : 'GOSSIP_ERR_MALFORMED_MESSAGE', `message from ${JSON.stringify(env.from)}: ${(err as Error).message}`);
        continue;
      }
      d.counters.messagesIn++;
      this.receivingFrom = remote;
      try {
        d.dispatch(msg, env);
      } finally {
        this.receivingFrom = null;
      }
      if (!d.ctx.running()) return; // a handler may have shut us down
    }
  }
}
