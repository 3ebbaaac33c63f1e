/**
 * Member tables stored by column, for memory that fits large simulations.
 *
 * Every node keeps a record of every member, so a process simulating N
 * nodes holds N² records: as objects plus two map entries each (by name,
 * by address) that was ~190 B per pair, ~19 GB at N = 10,000. Here:
 *
 * - One process-wide `identities` registry interns member names (a name is
 *   a small integer id) and (name, address, tags) identities, with
 *   reference counts: all nodes of one process share them. A real agent
 *   runs one node per process, so for it this is its own table.
 * - Each node keeps typed-array columns indexed by name id: status,
 *   incarnation and identity id, plus the probe order as an array of ids
 *   (~13 B per pair); the time of the last status change only for members
 *   not alive.
 *
 * Identities a node stops using (a member reaped, a new address or tags)
 * are released; one nobody uses is freed and its ids reused, so a
 * long-running agent's tables stay bounded by the membership it holds. A
 * node that is dropped without reaping releases its references when it is
 * garbage collected (FinalizationRegistry).
 */
import { tagsEqual, type MemberState, type MemberStatus } from '../member';
import { WireStatus, type Tags, type WireMember } from './messages';

/** Column codes for a member's status; 0 is "no such member here". */
export const ABSENT = 0;
export const ALIVE = 1;
export const SUSPECT = 2;
export const FAILED = 3;
export const LEFT = 4;
export type StatusCode = 0 | 1 | 2 | 3 | 4;

const STATUS_NAMES: readonly MemberStatus[] = ['failed', 'alive', 'suspect', 'failed', 'left'];
export function statusName(code: number): MemberStatus {
  return STATUS_NAMES[code] ?? 'failed';
}
const WIRE_STATUS: readonly WireStatus[] = [WireStatus.Failed, WireStatus.Alive, WireStatus.Suspect, WireStatus.Failed, WireStatus.Left];

export function statusCode(s: MemberStatus): StatusCode {
  return s === 'alive' ? ALIVE : s === 'suspect' ? SUSPECT : s === 'failed' ? FAILED : LEFT;
}

/** Process-wide interned names and (name, address, tags) identities, reference counted. */
class IdentityRegistry {
  private readonly nameIds = new Map<string, number>();
  /** name id → name (undefined: free). */
  private readonly names: (string | undefined)[] = [];
  /** name id → its identity ids in use (usually one). */
  private readonly variants: number[][] = [];
  private readonly freeNames: number[] = [];
  readonly identName: number[] = [];
  readonly identAddr: string[] = [];
  readonly identTags: Tags[] = [];
  private readonly identRefs: number[] = [];
  private readonly freeIdents: number[] = [];
  /** address → identity ids with that address (byAddress lookups). */
  private readonly byAddr = new Map<string, number[]>();
  /**
   * identity id → the last push-pull entry built for it. Nodes that agree
   * on a member (the usual case) send the same entry object, so a full
   * state costs an array of pointers, not N new objects. Entries are never
   * mutated after they are built (receivers and the codec only read them).
   */
  private readonly wire: (WireMember | undefined)[] = [];

  /** One more than the highest name id ever handed out: how wide a node's columns may need to be. */
  get nameSpan(): number {
    return this.names.length;
  }

  nameId(name: string): number | undefined {
    return this.nameIds.get(name);
  }

  nameOf(id: number): string | undefined {
    return this.names[id];
  }

  /** Identity ids that have this address. */
  withAddr(addr: string): readonly number[] | undefined {
    return this.byAddr.get(addr);
  }

  /** The push-pull entry for identity `iid` at incarnation `inc` with status `code`. */
  wireEntry(iid: number, inc: number, code: number): WireMember {
    const s = WIRE_STATUS[code] ?? WireStatus.Failed;
    const w = this.wire[iid];
    if (w !== undefined && w.i === inc && w.s === s) return w;
    const entry: WireMember = { n: this.names[this.identName[iid] as number] as string, a: this.identAddr[iid] as string, i: inc, s, g: this.identTags[iid] as Tags };
    // Its identity rides along under a symbol (not encoded, not enumerable): an in-process receiver skips the name lookup.
    Object.defineProperty(entry, WIRE_IDENTITY, { value: iid });
    this.wire[iid] = entry;
    return entry;
  }

  /**
   * The identity of a push-pull entry built by `wireEntry` in this process
   * and still current for it (a simulation's shared objects); else undefined.
   */
  identityOfEntry(entry: WireMember): number | undefined {
    const iid = (entry as { [WIRE_IDENTITY]?: number })[WIRE_IDENTITY];
    return iid !== undefined && this.wire[iid] === entry ? iid : undefined;
  }

  /** An identity for (name, addr, tags), with one more reference. */
  acquire(name: string, addr: string, tags: Tags): number {
    let nid = this.nameIds.get(name);
    if (nid === undefined) {
      nid = this.freeNames.pop() ?? this.names.length;
      this.names[nid] = name;
      this.variants[nid] = [];
      this.nameIds.set(name, nid);
    }
    const vs = this.variants[nid] as number[];
    for (const v of vs) {
      if (this.identAddr[v] === addr && (this.identTags[v] === tags || tagsEqual(this.identTags[v] as Tags, tags))) {
        this.identRefs[v]!++;
        return v;
      }
    }
    const iid = this.freeIdents.pop() ?? this.identName.length;
    this.identName[iid] = nid;
    this.identAddr[iid] = addr;
    this.identTags[iid] = tags;
    this.identRefs[iid] = 1;
    vs.push(iid);
    const at = this.byAddr.get(addr);
    if (at) at.push(iid);
    else this.byAddr.set(addr, [iid]);
    return iid;
  }

  /** Drop one reference; the identity (and its name, when it was the last) is freed at zero. */
  release(iid: number): void {
    const refs = (this.identRefs[iid] as number) - 1;
    this.identRefs[iid] = refs;
    if (refs > 0) return;
    const nid = this.identName[iid] as number;
    const addr = this.identAddr[iid] as string;
    const vs = this.variants[nid] as number[];
    vs.splice(vs.indexOf(iid), 1);
    const at = this.byAddr.get(addr) as number[];
    at.splice(at.indexOf(iid), 1);
    if (at.length === 0) this.byAddr.delete(addr);
    this.identAddr[iid] = '';
    this.identTags[iid] = EMPTY_TAGS;
    this.wire[iid] = undefined;
    this.freeIdents.push(iid);
    if (vs.length === 0) {
      this.nameIds.delete(this.names[nid] as string);
      this.names[nid] = undefined;
      this.freeNames.push(nid);
    }
  }
}

const EMPTY_TAGS: Tags = Object.freeze({});
const WIRE_IDENTITY = Symbol('identity');

export const identities = new IdentityRegistry();

/** Releases a dropped node's identity references once its membership is garbage collected. */
const dropped = new FinalizationRegistry<MemberColumns>((cols) => cols.releaseAll());

/**
 * One node's member table: columns indexed by name id, plus the probe
 * order (all members, self included, in random order).
 */
export class MemberColumns {
  status = new Uint8Array(0);
  /**
   * Incarnations: 32 bits (memberlist's range) until one does not fit, then
   * the column becomes 64-bit floats (bounds.ts lets them grow past 2^32).
   */
  inc: Uint32Array | Float64Array = new Uint32Array(0);
  /**
   * Clock time of the last status change, kept only for members not alive
   * (suspicion timers, tombstone reaping and gossip to the dead read it;
   * nothing reads it for alive members): nearly empty in a healthy cluster.
   */
  private readonly since = new Map<number, number>();
  ident = new Uint32Array(0);
  /** Name ids in random order; the first `size` entries are in use. */
  order = new Int32Array(0);
  size = 0;

  /** Tie the release of this table's references to the collection of `owner`. */
  static owned(owner: object): MemberColumns {
    const cols = new MemberColumns();
    dropped.register(owner, cols);
    return cols;
  }

  has(id: number): boolean {
    return id < this.status.length && this.status[id] !== ABSENT;
  }

  /** The id of a member this node holds, by name. */
  idOf(name: string): number | undefined {
    const id = identities.nameId(name);
    return id !== undefined && this.has(id) ? id : undefined;
  }

  addrOf(id: number): string {
    return identities.identAddr[this.ident[id] as number] as string;
  }

  tagsOf(id: number): Tags {
    return identities.identTags[this.ident[id] as number] as Tags;
  }

  /** Add a member at a random position of the probe order (so order is not biased by join order). */
  add(name: string, addr: string, tags: Tags, inc: number, status: StatusCode, now: number, random: () => number): number {
    const iid = identities.acquire(name, addr, tags);
    const id = identities.identName[iid] as number;
    this.reserve(id + 1, this.size + 1);
    this.ident[id] = iid;
    this.setInc(id, inc);
    this.setStatus(id, status, now);
    const i = Math.floor(random() * (this.size + 1));
    this.order[this.size] = this.order[i] as number;
    this.order[i] = id;
    this.size++;
    return id;
  }

  setStatus(id: number, status: StatusCode, now: number): void {
    this.status[id] = status;
    if (status === ALIVE) this.since.delete(id);
    else this.since.set(id, now);
  }

  /** When a member not alive got its status (NaN for alive members: not kept). */
  changedAt(id: number): number {
    return this.since.get(id) ?? Number.NaN;
  }

  setInc(id: number, inc: number): void {
    if (inc > 0xffffffff && this.inc instanceof Uint32Array) this.inc = Float64Array.from(this.inc);
    this.inc[id] = inc;
  }

  /** A new address or tags for a member: another identity. */
  setIdentity(id: number, addr: string, tags: Tags): void {
    const old = this.ident[id] as number;
    this.ident[id] = identities.acquire(identities.nameOf(id) as string, addr, tags);
    identities.release(old);
  }

  /** Forget a member (reap). O(members) for the order; reaps are rare. */
  remove(id: number): void {
    const at = this.order.subarray(0, this.size).indexOf(id);
    if (at >= 0) {
      this.order.copyWithin(at, at + 1, this.size);
      this.size--;
    }
    this.status[id] = ABSENT;
    this.since.delete(id);
    identities.release(this.ident[id] as number);
  }

  releaseAll(): void {
    for (let i = 0; i < this.size; i++) {
      const id = this.order[i] as number;
      if (this.status[id] !== ABSENT) identities.release(this.ident[id] as number);
      this.status[id] = ABSENT;
    }
    this.since.clear();
    this.size = 0;
  }

  /**
   * Room for ids below `span` and `count` entries in the order: doubling,
   * but never past the registry's name span (in a simulation every node
   * ends up knowing every name: no slack beyond it).
   */
  private reserve(span: number, count: number): void {
    if (span > this.status.length) {
      const cap = Math.max(span, Math.min(Math.max(2 * this.status.length, 8), identities.nameSpan));
      this.status = grow(this.status, new Uint8Array(cap));
      this.inc = grow(this.inc, this.inc instanceof Uint32Array ? new Uint32Array(cap) : new Float64Array(cap));
      this.ident = grow(this.ident, new Uint32Array(cap));
    }
    if (count > this.order.length) {
      const cap = Math.max(count, Math.min(Math.max(2 * this.order.length, 8), identities.nameSpan));
      this.order = grow(this.order, new Int32Array(cap));
    }
  }
}

function grow<T extends Uint8Array | Float64Array | Uint32Array | Int32Array>(old: T, next: T): T {
  next.set(old as never);
  return next;
}

/**
 * A live view of one member of one node's table (what the protocol code
 * holds while it works on a member). Reads go to the columns, so it sees
 * later changes; once the member is reaped it reads as `failed`.
 */
export class MemberRef implements MemberState {
  constructor(
    private readonly cols: MemberColumns,
    readonly id: number,
    readonly name: string,
  ) {}

  /** Still in the table (not reaped, the id not reused for another name). */
  get present(): boolean {
    return this.cols.has(this.id) && identities.nameOf(this.id) === this.name;
  }
  get addr(): string {
    return this.cols.addrOf(this.id);
  }
  get tags(): Tags {
    return this.cols.tagsOf(this.id);
  }
  get inc(): number {
    return this.cols.inc[this.id] as number;
  }
  get status(): MemberStatus {
    return this.present ? statusName(this.cols.status[this.id] as number) : 'failed';
  }
  get stateChange(): number {
    return this.cols.changedAt(this.id);
  }
}
