/**
 * A minimal client for Serf's agent RPC protocol (msgpack over TCP: the same
 * protocol the `serf` CLI speaks), so the benchmark can watch 50 agents'
 * event streams without forking a CLI process per poll.
 *
 * Protocol: every request is a header map `{ Command, Seq }` optionally
 * followed by a body map; every response is a header `{ Seq, Error }`,
 * followed by a body for commands that return one. `handshake` must come
 * first. A `stream` subscription answers once (header only), then sends a
 * header + body pair per event; we keep it on its own connection so the
 * pairing stays trivial.
 */
import net from 'node:net';
import { createRequire } from 'node:module';

// msgpackr is a dependency of @rhizome/gossip, not of the workspace root:
// resolve it the way that package does.
const gossipRequire = createRequire(new URL('../../packages/gossip/package.json', import.meta.url));
const { Packr, UnpackrStream } = gossipRequire('msgpackr') as typeof import('../../packages/gossip/node_modules/msgpackr');

const packr = new Packr({ useRecords: false, variableMapSize: true });

export interface SerfMember {
  Name: string;
  Status: string; // alive | leaving | left | failed
  Port: number;
  Tags: Record<string, string>;
}

export interface SerfStreamEvent {
  Event: string; // member-join | member-leave | member-failed | member-update | member-reap | user
  Members?: SerfMember[];
  Name?: string;
  LTime?: number;
  Payload?: Uint8Array;
}

class ObjectReader {
  private readonly items: unknown[] = [];
  private waiters: ((v: unknown) => void)[] = [];
  private failure: Error | undefined;
  onObject: ((v: unknown) => void) | undefined;

  constructor(sock: net.Socket) {
    const stream = new UnpackrStream({ useRecords: false, mapsAsObjects: true } as never);
    sock.pipe(stream);
    stream.on('data', (v: unknown) => {
      if (this.onObject) return this.onObject(v);
      const w = this.waiters.shift();
      if (w) w(v);
      else this.items.push(v);
    });
    const fail = (e: Error): void => {
      this.failure = e;
      for (const w of this.waiters.splice(0)) w(Promise.reject(e));
    };
    stream.on('error', fail);
    sock.on('close', () => fail(new Error('serf rpc connection closed')));
  }

  next(): Promise<unknown> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift());
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

async function dial(addr: string, timeoutMs = 10_000): Promise<net.Socket> {
  const [host, port] = addr.split(':');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(Number(port), host, () => resolve(s));
        s.once('error', reject);
      });
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export class SerfRpc {
  private seq = 0;
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly sock: net.Socket,
    private readonly reader: ObjectReader,
  ) {}

  /** Connects (retrying until the agent's RPC listener is up) and handshakes. */
  static async connect(rpcAddr: string, timeoutMs = 10_000): Promise<SerfRpc> {
    const sock = await dial(rpcAddr, timeoutMs);
    sock.setNoDelay(true);
    const c = new SerfRpc(sock, new ObjectReader(sock));
    await c.call('handshake', { Version: 1 }, false);
    return c;
  }

  /** One request at a time per connection. */
  call(command: string, body: unknown, hasResponseBody: boolean): Promise<unknown> {
    const run = async (): Promise<unknown> => {
      const seq = this.seq++;
      this.sock.write(packr.pack({ Command: command, Seq: seq }));
      if (body !== undefined) this.sock.write(packr.pack(body));
      const header = (await this.reader.next()) as { Seq: number; Error: string };
      if (header.Error) throw new Error(`serf rpc ${command}: ${header.Error}`);
      return hasResponseBody ? await this.reader.next() : undefined;
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  async members(): Promise<SerfMember[]> {
    const body = (await this.call('members', undefined, true)) as { Members: SerfMember[] };
    return body.Members;
  }

  async join(addrs: string[]): Promise<number> {
    const body = (await this.call('join', { Existing: addrs, Replay: false }, true)) as { Num: number };
    return body.Num;
  }

  async event(name: string, payload: Uint8Array, coalesce = false): Promise<void> {
    await this.call('event', { Name: name, Payload: payload, Coalesce: coalesce }, false);
  }

  async leave(): Promise<void> {
    await this.call('leave', undefined, false);
  }

  /**
   * Subscribes to events (`*` = all). After the acknowledgement, every
   * header is followed by one event body, passed to `onEvent`.
   */
  async stream(type: string, onEvent: (e: SerfStreamEvent) => void): Promise<void> {
    await this.call('stream', { Type: type }, false);
    let expectBody = false;
    this.reader.onObject = (v) => {
      if (!expectBody) {
        expectBody = true; // a header
        return;
      }
      expectBody = false;
      onEvent(v as SerfStreamEvent);
    };
  }

  close(): void {
    this.sock.destroy();
  }
}
