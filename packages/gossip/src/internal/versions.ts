/**
 * Protocol versions as ranges (memberlist's pmin/pmax/pcur), so a rolling
 * upgrade never cuts the mesh.
 *
 * Every frame says which version its body follows (`v`) and which versions
 * its sender understands (`pmin`..`pmax`). A receiver accepts a frame whose
 * `v` lies in its own range and refuses any other with GOSSIP_ERR_VERSION
 * and a reason that names the side to act on. A sender speaks to each peer
 * the newest version both understand, once it has heard the peer's range;
 * until then it speaks its oldest, which every peer one version behind or
 * ahead understands when each release keeps the previous version (range
 * [n - 1, n]). Frames from before ranges carry only `v`: their range is
 * [v, v]. Old receivers ignore the two extra envelope fields.
 */
import { FrameError } from './frame-error';

export interface VersionRange {
  readonly min: number;
  readonly max: number;
}

/** The versions this build understands. Version 1: envelope `{ v, pmin, pmax, from, addr, msgs }`. */
export const PROTOCOL_VERSIONS: VersionRange = Object.freeze({ min: 1, max: 1 });

/** The newest version this build speaks. */
export const PROTOCOL_VERSION = 1;

/** Versions are small integers; anything larger in a frame is malformed, not a future release. */
export const MAX_PROTOCOL_VERSION = 255;

/** The version to speak to a peer: the newest both understand, or our oldest while its range is unknown. */
export function speakTo(ours: VersionRange, peerMax: number | undefined): number {
  if (peerMax === undefined) return ours.min;
  return Math.max(ours.min, Math.min(ours.max, peerMax));
}

function versionField(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_PROTOCOL_VERSION) {
    throw new FrameError('GOSSIP_ERR_MALFORMED_FRAME', `envelope field ${field} (protocol version) is not an integer in 0..${MAX_PROTOCOL_VERSION}`);
  }
  return value;
}

/**
 * Reads a frame's `v`, `pmin`, `pmax` and checks `v` against `ours`.
 * @throws FrameError GOSSIP_ERR_MALFORMED_FRAME for a missing or inconsistent
 *   range, GOSSIP_ERR_VERSION (with what to do) for a version outside ours.
 */
export function checkVersions(v: unknown, pmin: unknown, pmax: unknown, ours: VersionRange): { v: number; pmin: number; pmax: number } {
  const ver = versionField(v, 'v');
  const lo = pmin === undefined ? ver : versionField(pmin, 'pmin');
  const hi = pmax === undefined ? ver : versionField(pmax, 'pmax');
  if (!(lo <= ver && ver <= hi)) {
    throw new FrameError('GOSSIP_ERR_MALFORMED_FRAME', `envelope speaks protocol version ${ver} outside its own range ${lo}..${hi}`);
  }
  if (ver >= ours.min && ver <= ours.max) return { v: ver, pmin: lo, pmax: hi };
  const spoke = `frame speaks protocol version ${ver} (its sender understands ${lo}..${hi}); this node understands ${ours.min}..${ours.max}`;
  let todo: string;
  if (lo > ours.max) todo = 'upgrade this node: the sender is more than one release ahead (upgrade one release at a time)';
  else if (hi < ours.min) todo = 'upgrade the sender: it is more than one release behind (upgrade one release at a time)';
  else todo = `the ranges overlap: the sender speaks ${speakTo({ min: lo, max: hi }, ours.max)} to this node once it has heard from it`;
  throw new FrameError('GOSSIP_ERR_VERSION', `${spoke}: ${todo}`);
}

/**
 * The newest version each peer (by advertised address) understands, as
 * heard in its frames. Bounded: past `max` peers the oldest entry goes
 * (that peer is spoken to in our oldest version until it is heard again).
 */
export class PeerVersions {
  private readonly known = new Map<string, number>();
  constructor(private readonly max = 4096) {}

  note(addr: string, pmax: number): void {
    if (this.known.get(addr) === pmax) return;
    this.known.delete(addr);
    this.known.set(addr, pmax);
    if (this.known.size > this.max) {
      const oldest = this.known.keys().next().value;
      if (oldest !== undefined) this.known.delete(oldest);
    }
  }

  get(addr: string): number | undefined {
    return this.known.get(addr);
  }

  get size(): number {
    return this.known.size;
  }
}
