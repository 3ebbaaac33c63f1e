/**
 * What a gossip node is built from and what it reports: its options (and
 * their validation, once, at construction) and its events.
 */
import type { Clock } from '@rhizome/clock';
import { checkLabel } from './internal/codec';
import { parseTags, type Tags } from './internal/messages';
import type { KeyringChange } from './key-manager';
import type { Keyring } from './keyring';
import type { GossipLogger } from './logger';
import type { Member } from './member';
import { DEFAULT_LAN_PROFILE, resolveProfile, type GossipProfile } from './options';
import type { Random } from './prng';
import type { RefusalSummary } from './internal/refusals';
import type { UnreachableReason } from './errors';
import type { Transport } from './transport';
import type { UserEvent } from './user-events';

/** Default for GossipNodeOptions.refusalReportInterval. */
export const DEFAULT_REFUSAL_REPORT_INTERVAL = 10_000;

export interface GossipNodeOptions {
  /** Unique in the cluster, 1..128 characters. */
  name: string;
  /** Where frames go in and out (WebSocket or SimNetwork); its address is the node's. */
  transport: Transport;
  /** Default: the system clock. A VirtualClock (SimNetwork's `clock`) in simulation. */
  clock?: Clock;
  tags?: Readonly<Record<string, string>>;
  /** Addresses `join()` contacts when called without arguments. */
  seeds?: readonly string[];
  /** Encrypt every frame and refuse plaintext. */
  keyring?: Keyring;
  /**
   * Cluster label (memberlist's Label): carried in every frame and checked
   * before anything else, so two clusters on one network never merge. At
   * most 255 UTF-8 bytes; '' (default) means none. Every member of a
   * cluster must have the same label.
   */
  label?: string;
  /**
   * Refused frames (wrong key or label, plaintext/encrypted mismatch,
   * malformed, ...) are summarised per peer host at most once per this many
   * ms: event `frames-refused` and one warn line. Default 10 s.
   */
  refusalReportInterval?: number;
  /** pino-compatible; silent by default. */
  logger?: GossipLogger;
  /** Base timing profile: DEFAULT_LAN_PROFILE (default) or LOCAL_PROFILE. */
  profile?: GossipProfile;
  /** Overrides on top of `profile`, validated together. */
  tuning?: Partial<GossipProfile>;
  /** Random source (seed it for reproducible simulations). Default Math.random. */
  random?: Random;
}

export interface NameConflict {
  readonly name: string;
  /** Where the live owner of the name is. */
  readonly ownerAddress: string;
  /** Where the refused claim came from. */
  readonly claimantAddress: string;
}

export interface GossipEvents {
  'member-join': Member;
  /** Tags (or address, after a restart elsewhere) changed. */
  'member-update': Member;
  'member-suspect': Member;
  'member-leave': Member;
  'member-failed': Member;
  /** A failed or left member's tombstone was removed. */
  'member-reap': Member;
  'user-event': UserEvent;
  'name-conflict': NameConflict;
  /** A reliable-channel message, delivered in order, once. */
  reliable: { readonly from: string; readonly payload: unknown };
  /** A best-effort message (sendBestEffort): at most once per copy sent, in any order. */
  direct: { readonly from: string; readonly payload: unknown };
  /** The reliable channel gave up on a member (pending sends were rejected). */
  unreachable: { readonly member: string; readonly reason: UnreachableReason };
  /**
   * Frames refused from one peer host, summarised (at most one per peer per
   * refusalReportInterval; also logged as one warn line). A keyring or label
   * mismatch shows up here on both sides.
   */
  'frames-refused': RefusalSummary;
  /** This member's keyring changed through a cluster key operation (`node.keys`): persist `keys`. */
  'keyring-change': KeyringChange;
}

export interface SendEventOptions {
  /** Deliver only the newest event of this name per eventCoalescePeriod. */
  coalesce?: boolean;
}

/** The options, checked: a TypeError saying what is wrong with the first bad one. */
export interface CheckedNodeOptions {
  readonly name: string;
  readonly transport: Transport;
  readonly tags: Tags;
  readonly profile: GossipProfile;
  readonly label: string;
  readonly refusalInterval: number;
}

export function checkNodeOptions(options: GossipNodeOptions): CheckedNodeOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('createNode: options object required');
  const { name, transport } = options;
  if (typeof name !== 'string' || name.length === 0 || name.length > 128) {
    throw new TypeError(`createNode: name must be a string of 1..128 characters, got ${JSON.stringify(name)}`);
  }
  if (!transport || typeof transport.send !== 'function' || typeof transport.setHandler !== 'function') {
    throw new TypeError('createNode: transport must implement Transport (send, setHandler, close, address)');
  }
  let tags: Tags;
  try {
    tags = parseTags(options.tags ?? {});
  } catch (err) {
    throw new TypeError(`createNode: ${(err as Error).message}`);
  }
  const profile = resolveProfile(options.profile ?? DEFAULT_LAN_PROFILE, options.tuning ?? {});
  let label: string;
  try {
    label = checkLabel(options.label ?? '');
  } catch (err) {
    throw new TypeError(`createNode: ${(err as Error).message}`);
  }
  const refusalInterval = options.refusalReportInterval ?? DEFAULT_REFUSAL_REPORT_INTERVAL;
  if (!(refusalInterval > 0) || !Number.isFinite(refusalInterval)) {
    throw new TypeError(`createNode: refusalReportInterval must be a positive number of ms, got ${String(refusalInterval)}`);
  }
  return { name, transport, tags, profile, label, refusalInterval };
}
