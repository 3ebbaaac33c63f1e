/**
 * Queries (Serf's Query / handleQuery / handleQueryResponse).
 *
 * A query is gossiped like a user event (Lamport time + random id, dedupe
 * ring of `queryBufferSize` slots), but each member that receives it and
 * passes its filters (node names; tag regexes, each anchored, all must
 * match) answers the requester *directly*: an ack at once if asked, then
 * the response its responder callback returns (if any). The requester
 * collects acks and responses, each at most once per member, until the
 * timeout; the default timeout scales with log N like Serf's:
 * gossipInterval × queryTimeoutMult × ceil(log10(N + 1)).
 *
 * The requester is a member too: it handles its own query locally.
 */
import { plausibleLamport } from './bounds';
import { BroadcastQueue } from './internal/broadcast-queue';
import { MAX_PAYLOAD_DEPTH, nestsDeeperThan } from './internal/codec';
import type { TimerHandle } from '@rhizome/clock';
import type { NodeContext } from './internal/context';
import { GossipError } from './errors';
import { LamportClock } from './internal/lamport';
import type { Tags } from './internal/messages';
import { MAX_FILTER_NODES, MAX_TAG_FILTER_LENGTH, MessageType, type QueryMsg, type QueryResponseMsg } from './internal/messages';
import { defaultQueryTimeout, retransmitLimit } from './options';
import { encodedSize } from './internal/size';

export interface QueryOptions {
  /** Only these members answer. */
  filterNodes?: readonly string[];
  /** Only members whose tag matches each regex (anchored: the whole value must match) answer. */
  filterTags?: Readonly<Record<string, string>>;
  /** Ask every matching member to ack on receipt (before its response). */
  requestAck?: boolean;
  /** Milliseconds; default gossipInterval × queryTimeoutMult × ceil(log10(N + 1)). */
  timeout?: number;
}

export type QueryEvent =
  | { readonly type: 'ack'; readonly from: string }
  | { readonly type: 'response'; readonly from: string; readonly payload: unknown };

export interface QueryResult {
  readonly acks: readonly string[];
  readonly responses: readonly { readonly from: string; readonly payload: unknown }[];
}

export interface IncomingQuery {
  readonly name: string;
  readonly payload: unknown;
  /** The requesting member's name. */
  readonly from: string;
  readonly ltime: number;
}

/** Return a payload to respond, or undefined for no response. */
export type QueryResponder = (query: IncomingQuery) => unknown;

/** A running query: iterate it, subscribe to it, or await `done`. */
export class QueryHandle implements AsyncIterable<QueryEvent> {
  readonly done: Promise<QueryResult>;
  private readonly acks = new Set<string>();
  private readonly responses = new Map<string, unknown>();
  private readonly log: QueryEvent[] = [];
  private readonly waiters = new Set<() => void>();
  private readonly listeners = new Set<(e: QueryEvent) => void>();
  private finished = false;
  private resolve!: (r: QueryResult) => void;

  constructor(
    readonly name: string,
    /** Clock time at which the query stops collecting. */
    readonly deadline: number,
    private readonly onClose: () => void,
  ) {
    this.done = new Promise((r) => {
      this.resolve = r;
    });
  }

  get closed(): boolean {
    return this.finished;
  }

  onAck(fn: (from: string) => void): () => void {
    const l = (e: QueryEvent): void => {
      if (e.type === 'ack') fn(e.from);
    };
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  onResponse(fn: (from: string, payload: unknown) => void): () => void {
    const l = (e: QueryEvent): void => {
      if (e.type === 'response') fn(e.from, e.payload);
    };
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Stop collecting now (also happens at the deadline). */
  close(): void {
    if (this.finished) return;
    this.finished = true;
    this.onClose();
    this.resolve({ acks: [...this.acks], responses: [...this.responses].map(([from, payload]) => ({ from, payload })) });
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  /** @internal */
  addAck(from: string): void {
    if (this.finished || this.acks.has(from)) return;
    this.acks.add(from);
    this.push({ type: 'ack', from });
  }

  /** @internal */
  addResponse(from: string, payload: unknown): void {
    if (this.finished || this.responses.has(from)) return;
    this.responses.set(from, payload);
    this.push({ type: 'response', from, payload });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<QueryEvent> {
    let i = 0;
    for (;;) {
      while (i < this.log.length) yield this.log[i++] as QueryEvent;
      if (this.finished) return;
      await new Promise<void>((r) => this.waiters.add(r));
    }
  }

  private push(e: QueryEvent): void {
    this.log.push(e);
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // a listener's failure is its own
      }
    }
    for (const w of this.waiters) w();
    this.waiters.clear();
  }
}

interface Slot {
  ltime: number;
  ids: number[];
}

export class Queries {
  readonly clock = new LamportClock();
  readonly queue: BroadcastQueue;
  private readonly ring: (Slot | undefined)[];
  private readonly responders = new Map<string, QueryResponder>();
  private readonly pending = new Map<string, { handle: QueryHandle; timer: TimerHandle }>();
  private readonly regexCache = new Map<string, RegExp | null>();

  constructor(
    private readonly ctx: NodeContext,
    private readonly localTags: () => Tags,
  ) {
    this.ring = new Array<Slot | undefined>(ctx.profile.queryBufferSize);
    this.queue = new BroadcastQueue(() => retransmitLimit(ctx.profile.retransmitMult, ctx.numMembers()), 4096, () => ctx.gossipSoon());
  }

  /** Register the responder for query `name` ('*' answers every name without its own responder). */
  respond(name: string, fn: QueryResponder): () => void {
    this.responders.set(name, fn);
    return () => {
      if (this.responders.get(name) === fn) this.responders.delete(name);
    };
  }

  query(name: string, payload: unknown, opts: QueryOptions): QueryHandle {
    if (typeof name !== 'string' || name.length === 0 || name.length > 128) {
      throw new TypeError('query: name must be a string of 1..128 characters');
    }
    if (nestsDeeperThan(payload, MAX_PAYLOAD_DEPTH)) {
      throw new GossipError(
        'GOSSIP_ERR_PAYLOAD_TOO_DEEP',
        `query "${name}" payload nests deeper than ${MAX_PAYLOAD_DEPTH} levels of arrays/objects (MAX_PAYLOAD_DEPTH); flatten it`,
      );
    }
    if (opts.filterNodes && opts.filterNodes.length > MAX_FILTER_NODES) {
      throw new TypeError(`query: filterNodes may name at most ${MAX_FILTER_NODES} members`);
    }
    for (const [k, re] of Object.entries(opts.filterTags ?? {})) {
      if (re.length > MAX_TAG_FILTER_LENGTH) throw new TypeError(`query: filterTags.${k} is longer than ${MAX_TAG_FILTER_LENGTH}`);
      try {
        new RegExp(re);
      } catch (err) {
        throw new TypeError(`query: filterTags.${k} is not a valid regular expression: ${(err as Error).message}`);
      }
    }
    const timeout = opts.timeout ?? defaultQueryTimeout(this.ctx.profile, this.ctx.numMembers());
    if (!(timeout > 0) || !Number.isFinite(timeout)) throw new TypeError('query: timeout must be a positive number of milliseconds');
    const msg: QueryMsg = {
      t: MessageType.Query,
      lt: this.clock.time(),
      id: Math.floor(this.ctx.random() * 2 ** 32),
      from: this.ctx.name,
      addr: this.ctx.address,
      name,
      payload: payload ?? null,
      filterNodes: opts.filterNodes ? [...opts.filterNodes] : null,
      filterTags: opts.filterTags ? { ...opts.filterTags } : null,
      ack: opts.requestAck ?? false,
      timeout: Math.ceil(timeout),
    };
    const size = encodedSize(msg);
    if (size > this.ctx.profile.querySizeLimit) {
      throw new GossipError(
        'GOSSIP_ERR_QUERY_TOO_LARGE',
        `query "${name}" encodes to ${size} bytes, above querySizeLimit ${this.ctx.profile.querySizeLimit}; send a smaller payload or raise the limit on every node`,
      );
    }
    this.clock.increment();
    const key = `${msg.lt}:${msg.id}`;
    const handle = new QueryHandle(name, this.ctx.clock.now() + timeout, () => {
      const p = this.pending.get(key);
      if (p) this.ctx.clock.clearTimeout(p.timer);
      this.pending.delete(key);
    });
    const timer = this.ctx.clock.setTimeout(() => handle.close(), timeout);
    this.pending.set(key, { handle, timer });
    this.handle(msg, size);
    return handle;
  }

  handle(msg: QueryMsg, size?: number): boolean {
    // Refuse implausibly new times (bounds.ts): adopting one could push our clock beyond encoding.
    if (!plausibleLamport(msg.lt, this.clock.time())) {
      this.ctx.implausible(`query ${JSON.stringify(msg.name.slice(0, 64))} at Lamport time ${msg.lt}`);
      return false;
    }
    this.clock.witness(msg.lt);
    const cur = this.clock.time();
    const n = this.ring.length;
    if (cur > n && msg.lt < cur - n) return false;
    const idx = msg.lt % n;
    let slot = this.ring[idx];
    if (slot && slot.ltime === msg.lt) {
      if (slot.ids.includes(msg.id)) return false;
    } else {
      slot = { ltime: msg.lt, ids: [] };
      this.ring[idx] = slot;
    }
    slot.ids.push(msg.id);
    this.queue.queue({ key: null, msg, size: size ?? encodedSize(msg) });
    if (!this.matches(msg)) return true;
    if (msg.ack) this.reply(msg, { t: MessageType.QueryResponse, lt: msg.lt, id: msg.id, from: this.ctx.name, ack: true, payload: null });
    const responder = this.responders.get(msg.name) ?? this.responders.get('*');
    if (responder) {
      const q: IncomingQuery = Object.freeze({ name: msg.name, payload: msg.payload, from: msg.from, ltime: msg.lt });
      let result: unknown;
      try {
        result = responder(q);
      } catch (err) {
        this.ctx.logger.warn({ query: msg.name, err: String(err) }, 'gossip: query responder threw; no response sent');
        return true;
      }
      void Promise.resolve(result).then(
        (payload) => {
          if (payload === undefined || !this.ctx.running()) return;
          const resp: QueryResponseMsg = { t: MessageType.QueryResponse, lt: msg.lt, id: msg.id, from: this.ctx.name, ack: false, payload };
          const rsize = encodedSize(resp);
          if (rsize > this.ctx.profile.queryResponseSizeLimit) {
            this.ctx.logger.warn(
              { query: msg.name, size: rsize, limit: this.ctx.profile.queryResponseSizeLimit },
              'gossip: query response above queryResponseSizeLimit; not sent',
            );
            return;
          }
          this.reply(msg, resp);
        },
        (err: unknown) => this.ctx.logger.warn({ query: msg.name, err: String(err) }, 'gossip: query responder rejected; no response sent'),
      );
    }
    return true;
  }

  handleResponse(msg: QueryResponseMsg): void {
    const p = this.pending.get(`${msg.lt}:${msg.id}`);
    if (!p) return;
    if (msg.ack) p.handle.addAck(msg.from);
    else p.handle.addResponse(msg.from, msg.payload);
  }

  shutdown(): void {
    for (const p of [...this.pending.values()]) p.handle.close();
    this.pending.clear();
    this.queue.reset();
  }

  private reply(q: QueryMsg, resp: QueryResponseMsg): void {
    if (q.from === this.ctx.name) this.handleResponse(resp);
    else this.ctx.send(q.addr, [resp]);
  }

  private matches(msg: QueryMsg): boolean {
    if (msg.filterNodes && !msg.filterNodes.includes(this.ctx.name)) return false;
    if (msg.filterTags) {
      const tags = this.localTags();
      for (const [k, src] of Object.entries(msg.filterTags)) {
        const v = tags[k];
        if (v === undefined) return false;
        const re = this.regex(src);
        if (!re || !re.test(v)) return false;
      }
    }
    return true;
  }

  private regex(src: string): RegExp | null {
    let re = this.regexCache.get(src);
    if (re === undefined) {
      try {
        re = new RegExp(`^(?:${src})$`);
      } catch {
        re = null;
      }
      if (this.regexCache.size > 256) this.regexCache.clear();
      this.regexCache.set(src, re);
    }
    return re;
  }
}
