import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MessageError } from '../src/errors';
import { MessageType, parseMessage, type Message } from '../src/internal/messages';

const name = fc.string({ minLength: 1, maxLength: 20 });
const uint = fc.nat({ max: 2 ** 40 });
const tags = fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 5 });

/** Arbitrary valid messages of every type. */
const validMessage: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ t: fc.constant(MessageType.Ping), seq: uint, target: name }),
  fc.record({ t: fc.constant(MessageType.IndirectPing), seq: uint, target: name, targetAddr: name, nack: fc.boolean() }),
  fc.record({ t: fc.constant(MessageType.Ack), seq: uint }),
  fc.record({ t: fc.constant(MessageType.Nack), seq: uint }),
  fc.record({ t: fc.constant(MessageType.Suspect), node: name, inc: uint, from: name, ev: fc.boolean() }),
  fc.record({ t: fc.constant(MessageType.Alive), node: name, addr: name, inc: uint, tags }),
  fc.record({ t: fc.constant(MessageType.Dead), node: name, inc: uint, from: name }),
  fc.record({
    t: fc.constant(MessageType.PushPull),
    join: fc.boolean(),
    reply: fc.boolean(),
    ans: fc.boolean(),
    members: fc.array(fc.record({ n: name, a: name, i: uint, s: fc.constantFrom(0, 1, 2, 3) as fc.Arbitrary<0 | 1 | 2 | 3>, g: tags }), { maxLength: 5 }),
    ev: uint,
    qt: uint,
    seen: fc.option(fc.array(fc.tuple(uint, name, fc.nat({ max: 0xffffffff })), { maxLength: 4 }), { nil: null }),
  }),
  fc.record({ t: fc.constant(MessageType.UserEvent), lt: uint, name, payload: fc.jsonValue(), cc: fc.boolean() }),
  fc.record({ t: fc.constant(MessageType.ReliableAck), sid: uint, upTo: uint }),
  fc.record({ t: fc.constant(MessageType.Conflict), node: name, addr: name }),
  fc.record({ t: fc.constant(MessageType.Heard), node: name, inc: uint, from: name }),
  fc.record({ t: fc.constant(MessageType.Direct), payload: fc.jsonValue() }),
);

describe('parseMessage', () => {
  it('accepts every well-formed message unchanged', () => {
    fc.assert(
      fc.property(validMessage, (m) => {
        const parsed = parseMessage(structuredClone(m));
        expect(parsed).toEqual(m);
      }),
    );
  });

  it('rejects unknown types with GOSSIP_ERR_UNKNOWN_TYPE', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 17, max: 1_000 }), fc.integer({ max: 0 }), fc.string()), (t) => {
        try {
          parseMessage({ t, seq: 1 });
          return false;
        } catch (e) {
          return e instanceof MessageError && e.code === 'GOSSIP_ERR_UNKNOWN_TYPE';
        }
      }),
    );
  });

  it('rejects a message with any field removed or replaced by a wrong type', () => {
    const wrong = fc.oneof(fc.constant(-1), fc.constant(1.5), fc.constant('x'.repeat(300)), fc.constant([]), fc.constant({}), fc.constant(true), fc.constant(Number.NaN));
    fc.assert(
      fc.property(validMessage, fc.nat(), wrong, fc.boolean(), (m, pick, bad, remove) => {
        const keys = Object.keys(m).filter((k) => k !== 't' && k !== 'payload' && k !== 'seen' && k !== 'ev'); // optional fields
        if (keys.length === 0) return true;
        const key = keys[pick % keys.length] as string;
        const copy: Record<string, unknown> = { ...m };
        if (remove) delete copy[key];
        else copy[key] = bad;
        // Some replacements are still valid (e.g. [] for members, true for a boolean); those must parse.
        try {
          parseMessage(copy);
          return !remove && typeof (m as unknown as Record<string, unknown>)[key] === typeof bad && !(typeof bad === 'string' && bad.length > 256) && !(typeof bad === 'number');
        } catch (e) {
          return e instanceof MessageError && e.code === 'GOSSIP_ERR_MALFORMED_MESSAGE';
        }
      }),
    );
  });

  it('rejects non-objects, oversized tags and inconsistent reliable sequence numbers', () => {
    for (const raw of [null, 1, 'ping', [], new Uint8Array(2)]) expect(() => parseMessage(raw)).toThrow(MessageError);
    const big = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, 'v'.repeat(60)]));
    expect(() => parseMessage({ t: MessageType.Alive, node: 'a', addr: 'b', inc: 1, tags: big })).toThrow(/tags/);
    expect(() => parseMessage({ t: MessageType.Reliable, sid: 1, seq: 3, base: 4, payload: null })).toThrow(MessageError);
    expect(() => parseMessage({ t: MessageType.Reliable, sid: 1, seq: 0, base: 0, payload: null })).toThrow(MessageError);
    expect(parseMessage({ t: MessageType.Reliable, sid: 1, seq: 4, base: 2, payload: { a: 1 } })).toEqual({ t: 12, sid: 1, seq: 4, base: 2, payload: { a: 1 } });
  });
});
