import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import {
  DEFAULT_MAX_FRAME_SIZE,
  FRAME_TAG_ENCRYPTED,
  FRAME_TAG_PLAINTEXT,
  FrameError,
  PROTOCOL_VERSION,
  decodeFrame,
  encodeFrames,
} from '../src/internal/codec';
import { scanMsgpack } from '../src/internal/msgpack-scan';
import { Keyring } from '../src/keyring';

const raw = new Packr({ useRecords: false, variableMapSize: true });

function frameOf(value: unknown): Uint8Array {
  const body = raw.pack(value);
  const f = new Uint8Array(body.length + 1);
  f[0] = FRAME_TAG_PLAINTEXT;
  f.set(body, 1);
  return f;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof FrameError) return e.code;
    throw e;
  }
  return 'no error';
}

/** Plain data as protocol messages carry it. */
const plainValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    // msgpack has no negative zero for integers: -0 arrives as 0.
    fc.double({ noNaN: true }).map((x) => (Object.is(x, -0) ? 0 : x)),
    fc.string(),
    fc.uint8Array({ maxLength: 64 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(
      fc.string().filter((k) => k !== '__proto__'),
      tie('value'),
      { maxKeys: 5 },
    ),
  ),
})).value;

const opts = { maxFrameSize: DEFAULT_MAX_FRAME_SIZE };

describe('codec: round trip', () => {
  it('decodes what it encodes, same envelope, same message order (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 128 }),
        fc.string({ maxLength: 64 }),
        fc.array(plainValue, { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 256, max: 4096 }),
        fc.boolean(),
        (from, addr, msgs, maxFrameSize, encrypted) => {
          const keyring = encrypted ? new Keyring(Keyring.generateKey()) : undefined;
          const o = { maxFrameSize, keyring };
          let frames: Uint8Array[];
          try {
            frames = encodeFrames({ from, addr, msgs }, o);
          } catch (e) {
            // Only acceptable failure: one message alone is too big for this frame size.
            expect((e as FrameError).code).toBe('GOSSIP_ERR_MESSAGE_TOO_LARGE');
            return;
          }
          const out: unknown[] = [];
          for (const f of frames) {
            expect(f.length).toBeLessThanOrEqual(maxFrameSize);
            expect(f[0]).toBe(encrypted ? FRAME_TAG_ENCRYPTED : FRAME_TAG_PLAINTEXT);
            const env = decodeFrame(f, o);
            expect(env.v).toBe(PROTOCOL_VERSION);
            expect(env.from).toBe(from);
            expect(env.addr).toBe(addr);
            expect(env.msgs.length).toBeGreaterThan(0);
            out.push(...env.msgs);
          }
          expect(out).toEqual(msgs);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps binary payloads as Uint8Array', () => {
    const payload = new Uint8Array([0, 1, 2, 250, 255]);
    const [f] = encodeFrames({ from: 'a', addr: '127.0.0.1:1', msgs: [{ t: 'event', payload }] }, opts);
    const env = decodeFrame(f!, opts);
    const m = env.msgs[0] as { payload: Uint8Array };
    expect(m.payload).toBeInstanceOf(Uint8Array);
    expect([...m.payload]).toEqual([...payload]);
  });

  it('produces no frames for no messages', () => {
    expect(encodeFrames({ from: 'a', addr: 'x', msgs: [] }, opts)).toEqual([]);
  });
});

describe('codec: packing', () => {
  it('packs many small messages into one frame', () => {
    const msgs = Array.from({ length: 100 }, (_, i) => ({ t: 'ping', seq: i }));
    const frames = encodeFrames({ from: 'node-a', addr: '127.0.0.1:7946', msgs }, opts);
    expect(frames).toHaveLength(1);
    expect(decodeFrame(frames[0]!, opts).msgs).toEqual(msgs);
  });

  it('splits across frames when they do not fit, filling each frame, in order', () => {
    const msgs = Array.from({ length: 50 }, (_, i) => ({ seq: i, pad: 'x'.repeat(100) }));
    const maxFrameSize = 1000;
    for (const keyring of [undefined, new Keyring(Keyring.generateKey())]) {
      const o = { maxFrameSize, keyring };
      const frames = encodeFrames({ from: 'node-a', addr: '127.0.0.1:7946', msgs }, o);
      expect(frames.length).toBeGreaterThan(5);
      const decoded = frames.map((f) => decodeFrame(f, o).msgs);
      expect(decoded.flat()).toEqual(msgs);
      for (let i = 0; i < frames.length; i++) {
        expect(frames[i]!.length).toBeLessThanOrEqual(maxFrameSize);
        // Every frame but the last is full: the next message would not have fit.
        if (i < frames.length - 1) expect(frames[i]!.length + 110).toBeGreaterThan(maxFrameSize);
      }
    }
  });

  it('an exact-fit frame is accepted; one byte less is an error', () => {
    const msgs = [{ data: 'y'.repeat(500) }];
    const [f] = encodeFrames({ from: 'a', addr: 'b', msgs }, { maxFrameSize: 4096 });
    const exact = f!.length;
    expect(encodeFrames({ from: 'a', addr: 'b', msgs }, { maxFrameSize: exact })).toHaveLength(1);
    expect(codeOf(() => encodeFrames({ from: 'a', addr: 'b', msgs }, { maxFrameSize: exact - 1 }))).toBe(
      'GOSSIP_ERR_MESSAGE_TOO_LARGE',
    );
  });

  it('uses array16 headers correctly for more than 15 messages per frame', () => {
    const msgs = Array.from({ length: 70_000 }, (_, i) => i % 100);
    const frames = encodeFrames({ from: 'a', addr: 'b', msgs }, { maxFrameSize: 1 << 20 });
    expect(frames).toHaveLength(1);
    expect(decodeFrame(frames[0]!, { maxFrameSize: 1 << 20 }).msgs).toEqual(msgs);
  });
});

describe('codec: encoding cache', () => {
  it('reuses the encoding of cached messages and produces the same frames', () => {
    const cache = new WeakMap<object, Uint8Array>();
    const direct = { t: 1, seq: 7, target: 'b' };
    const bcast = { t: 5, node: 'c', addr: '127.0.0.1:3', inc: 2, tags: { role: 'web' } };
    const opts = { maxFrameSize: DEFAULT_MAX_FRAME_SIZE, cache, cacheFrom: 1 };
    const a = encodeFrames({ from: 'a', addr: '127.0.0.1:1', msgs: [direct, bcast] }, opts);
    expect(cache.has(bcast)).toBe(true);
    expect(cache.has(direct)).toBe(false);
    const b = encodeFrames({ from: 'a', addr: '127.0.0.1:1', msgs: [direct, bcast] }, opts);
    const plain = encodeFrames({ from: 'a', addr: '127.0.0.1:1', msgs: [direct, bcast] }, { maxFrameSize: DEFAULT_MAX_FRAME_SIZE });
    expect(b).toEqual(a);
    expect(a).toEqual(plain);
    // Another sender in the same process gets its own envelope.
    const other = decodeFrame(encodeFrames({ from: 'z', addr: '127.0.0.1:9', msgs: [bcast] }, opts)[0]!, { maxFrameSize: DEFAULT_MAX_FRAME_SIZE });
    expect(other.from).toBe('z');
    expect(other.addr).toBe('127.0.0.1:9');
    expect(other.msgs).toEqual([bcast]);
  });
});

describe('codec: size limit', () => {
  it('refuses to encode a single message larger than a frame', () => {
    const e = (() => {
      try {
        encodeFrames({ from: 'a', addr: 'b', msgs: [{ big: 'z'.repeat(70_000) }] }, opts);
      } catch (err) {
        return err as FrameError;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(FrameError);
    expect(e!.code).toBe('GOSSIP_ERR_MESSAGE_TOO_LARGE');
    expect(e!.message).toMatch(/maxFrameSize/);
  });

  it('rejects an inbound frame above maxFrameSize before decoding it', () => {
    const [f] = encodeFrames({ from: 'a', addr: 'b', msgs: ['q'.repeat(2000)] }, opts);
    expect(codeOf(() => decodeFrame(f!, { maxFrameSize: 1024 }))).toBe('GOSSIP_ERR_FRAME_TOO_LARGE');
    expect(decodeFrame(f!, { maxFrameSize: 4096 }).msgs).toEqual(['q'.repeat(2000)]);
  });
});

describe('codec: bad input', () => {
  it('rejects wrong versions with GOSSIP_ERR_VERSION', () => {
    expect(codeOf(() => decodeFrame(frameOf({ v: 2, from: 'a', addr: 'b', msgs: [] }), opts))).toBe('GOSSIP_ERR_VERSION');
    expect(codeOf(() => decodeFrame(frameOf({ v: 0, from: 'a', addr: 'b', msgs: [] }), opts))).toBe('GOSSIP_ERR_VERSION');
  });

  it('validates the envelope field by field', () => {
    const good = { v: PROTOCOL_VERSION, from: 'a', addr: 'b', msgs: [1] };
    expect(decodeFrame(frameOf(good), opts).msgs).toEqual([1]);
    const bad: unknown[] = [
      { ...good, v: '1' },
      { ...good, v: 1.5 },
      { ...good, from: '' },
      { ...good, from: 'n'.repeat(129) },
      { ...good, from: 7 },
      { ...good, addr: null },
      { ...good, msgs: {} },
      { v: 1, from: 'a', addr: 'b' },
      [1, 'a', 'b', []],
      'hello',
      42,
      null,
      new Uint8Array(4),
    ];
    for (const b of bad) expect(codeOf(() => decodeFrame(frameOf(b), opts))).toBe('GOSSIP_ERR_MALFORMED_FRAME');
  });

  it('rejects msgpackr extensions, non-string keys, trailing bytes and lying lengths', () => {
    const full = new Packr({ structuredClone: true, moreTypes: true, useRecords: true });
    const values = [new Date(), new Set([1]), new Map([[1, 2]]), /re/g, new Error('x'), new Float64Array(2), 10n ** 30n];
    for (const v of values) {
      const body = full.pack({ v: 1, from: 'a', addr: 'b', msgs: [v] });
      const f = new Uint8Array(body.length + 1);
      f.set(body, 1);
      expect(codeOf(() => decodeFrame(f, opts))).toBe('GOSSIP_ERR_MALFORMED_FRAME');
    }
    const good = frameOf({ v: 1, from: 'a', addr: 'b', msgs: [] });
    const trailing = new Uint8Array([...good, 0xc0]);
    expect(codeOf(() => decodeFrame(trailing, opts))).toBe('GOSSIP_ERR_MALFORMED_FRAME');
    // array32 claiming 4 billion elements in a 6-byte body: must not allocate.
    expect(codeOf(() => decodeFrame(new Uint8Array([0, 0xdd, 0xff, 0xff, 0xff, 0xff]), opts))).toBe(
      'GOSSIP_ERR_MALFORMED_FRAME',
    );
    expect(scanMsgpack(new Uint8Array([0x81, 0x01, 0x02]), 0, 3)).toMatch(/not a string/);
    expect(codeOf(() => decodeFrame(new Uint8Array([]), opts))).toBe('GOSSIP_ERR_MALFORMED_FRAME');
    expect(codeOf(() => decodeFrame(new Uint8Array([7, 0xc0]), opts))).toBe('GOSSIP_ERR_MALFORMED_FRAME');
  });

  it('rejects nesting deeper than MAX_DEPTH without recursion', () => {
    const deep = new Uint8Array(100_000).fill(0x91);
    deep[deep.length - 1] = 0xc0;
    expect(scanMsgpack(deep, 0, deep.length)).toMatch(/nesting/);
    const f = new Uint8Array(deep.length + 1);
    f.set(deep, 1);
    expect(codeOf(() => decodeFrame(f, { maxFrameSize: 1 << 20 }))).toBe('GOSSIP_ERR_MALFORMED_FRAME');
  });

  it('refuses to encode values that are not plain data, at the sender', () => {
    for (const v of [new Date(), new Set([1]), new Map([[1, 2]]), 5n, () => 1, Symbol('s'), new Float32Array(1)]) {
      expect(codeOf(() => encodeFrames({ from: 'a', addr: 'b', msgs: [{ v }] }, opts))).toBe('GOSSIP_ERR_UNENCODABLE');
    }
    expect(codeOf(() => encodeFrames({ from: '', addr: 'b', msgs: [1] }, opts))).toBe('GOSSIP_ERR_UNENCODABLE');
  });

  it('keeps __proto__ keys from polluting prototypes', () => {
    const body = raw.pack({ v: 1, from: 'a', addr: 'b', msgs: [JSON.parse('{"__proto__":{"polluted":true}}')] });
    const f = new Uint8Array(body.length + 1);
    f.set(body, 1);
    const env = decodeFrame(f, opts);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.getPrototypeOf(env.msgs[0])).toBe(Object.prototype);
  });
});

describe('codec: encryption', () => {
  it('refuses plaintext when a keyring is configured', () => {
    const keyring = new Keyring(Keyring.generateKey());
    const [plain] = encodeFrames({ from: 'a', addr: 'b', msgs: [1] }, opts);
    expect(codeOf(() => decodeFrame(plain!, { ...opts, keyring }))).toBe('GOSSIP_ERR_PLAINTEXT_REFUSED');
  });

  it('refuses encrypted frames without a keyring, with their own code', () => {
    const keyring = new Keyring(Keyring.generateKey());
    const [sealed] = encodeFrames({ from: 'a', addr: 'b', msgs: [1] }, { ...opts, keyring });
    expect(codeOf(() => decodeFrame(sealed!, opts))).toBe('GOSSIP_ERR_NO_KEYRING');
  });

  it('does not leak the plaintext into the frame', () => {
    const keyring = new Keyring(Keyring.generateKey());
    const secret = 'the-secret-payload-0123456789';
    const [sealed] = encodeFrames({ from: 'node-secret', addr: 'b', msgs: [secret] }, { ...opts, keyring });
    expect(Buffer.from(sealed!).includes(Buffer.from(secret))).toBe(false);
    expect(Buffer.from(sealed!).includes(Buffer.from('node-secret'))).toBe(false);
  });

  it('rejects every single-bit tamper with GOSSIP_ERR_DECRYPT', () => {
    const keyring = new Keyring(Keyring.generateKey());
    const o = { ...opts, keyring };
    const [sealed] = encodeFrames({ from: 'a', addr: 'b', msgs: [{ t: 'alive', inc: 3 }] }, o);
    expect(decodeFrame(sealed!, o).msgs).toEqual([{ t: 'alive', inc: 3 }]);
    // Every byte after the tag (key id, nonce, ciphertext, auth tag), one bit each.
    for (let i = 1; i < sealed!.length; i++) {
      const t = new Uint8Array(sealed!);
      t[i]! ^= 1 << i % 8;
      expect(codeOf(() => decodeFrame(t, o))).toBe('GOSSIP_ERR_DECRYPT');
    }
    // Truncations.
    for (const len of [2, 10, 20, sealed!.length - 1]) {
      expect(codeOf(() => decodeFrame(sealed!.subarray(0, len), o))).toBe('GOSSIP_ERR_DECRYPT');
    }
  });

  it('rejects frames sealed with a key we do not hold', () => {
    const a = new Keyring(Keyring.generateKey());
    const b = new Keyring(Keyring.generateKey());
    const [sealed] = encodeFrames({ from: 'a', addr: 'b', msgs: [1] }, { ...opts, keyring: a });
    expect(codeOf(() => decodeFrame(sealed!, { ...opts, keyring: b }))).toBe('GOSSIP_ERR_DECRYPT');
  });

  it('follows a full key rotation between two nodes (install, use, remove)', () => {
    const k1 = Keyring.generateKey();
    const k2 = Keyring.generateKey();
    const alice = new Keyring(k1);
    const bob = new Keyring(k1);
    const send = (from: Keyring, to: Keyring, m: unknown) =>
      decodeFrame(encodeFrames({ from: 'x', addr: 'y', msgs: [m] }, { ...opts, keyring: from })[0]!, {
        ...opts,
        keyring: to,
      }).msgs[0];

    expect(send(alice, bob, 1)).toBe(1);
    alice.install(k2);
    bob.install(k2);
    alice.use(k2); // alice writes with k2 now, bob still with k1: both read both.
    expect(send(alice, bob, 2)).toBe(2);
    expect(send(bob, alice, 3)).toBe(3);
    bob.use(k2);
    alice.remove(k1);
    bob.remove(k1);
    expect(send(alice, bob, 4)).toBe(4);
    // A node still on k1 only is now locked out.
    const stale = new Keyring(k1);
    expect(codeOf(() => send(stale, bob, 5))).toBe('GOSSIP_ERR_DECRYPT');
    expect(codeOf(() => send(alice, stale, 6))).toBe('GOSSIP_ERR_DECRYPT');
  });
});
