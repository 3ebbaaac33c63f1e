/**
 * Counters a node keeps about its traffic and about everything it dropped.
 * Counters only: memory stays constant however much bad input arrives.
 */
export interface DropCounters {
  /** Frame above maxFrameSize. */
  tooLarge: number;
  /** Frame or message that does not parse (bad msgpack, bad envelope, bad message fields). */
  malformed: number;
  /** Envelope with a protocol version we do not speak. */
  version: number;
  /** Message with a type number we do not know. */
  unknownType: number;
  /** Frame whose sender claims a name a different live member owns (or ours). */
  spoofed: number;
  /** Encrypted frame no installed key opens. */
  decrypt: number;
  /** Plaintext frame while we have a keyring, or encrypted while we have none. */
  plaintextRefused: number;
  /** Frame with another cluster's label (or none when we have one, or one when we have none). */
  label: number;
  /** Message whose incarnation or Lamport time jumps implausibly far ahead (bounds.ts). */
  implausible: number;
  /** Messages we could not encode (too large for a frame); a local bug or oversized payload. */
  unencodable: number;
}

export interface NodeStats {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  dropped: DropCounters;
}

export function newStats(): NodeStats {
  return {
    framesIn: 0,
    framesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    messagesIn: 0,
    messagesOut: 0,
    dropped: { tooLarge: 0, malformed: 0, version: 0, unknownType: 0, spoofed: 0, decrypt: 0, plaintextRefused: 0, label: 0, implausible: 0, unencodable: 0 },
  };
}
