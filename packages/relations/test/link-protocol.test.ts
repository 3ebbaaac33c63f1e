import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { emptyLinkRecord, type LinkRecord } from '../src/link-store';
import { acknowledge, admit, answerPull, nextInOrder, queueData, retransmission, shouldPull } from '../src/internal/link-protocol';
import type { DataMessage, PullMessage, SyncMessage } from '../src/messages';
import { newEndpointState, type EndpointState, type LinkReceiveState, type UnitView } from '../src/state';

const E = 100;
const data = (seq: number, opts: Partial<DataMessage> = {}): DataMessage => ({
  v: 1,
  type: 'data',
  rel: 'r',
  from: 'a/0',
  to: 'b/0',
  epoch: E,
  seq,
  base: 1,
  inc: 7,
  version: seq,
  bag: { n: seq },
  ...opts,
});
const pos = (epoch: number, applied: number): LinkReceiveState => ({ epoch, applied });
const state = (version: number, extra: Partial<EndpointState> = {}): EndpointState => ({
  ...newEndpointState({ interface: 'counter', interfaceVersion: '1.0.0', role: 'provides', unit: 'a/0', incarnation: 7 }),
  local: { bag: { n: version }, version },
  ...extra,
});
const record = (extra: Partial<LinkRecord> = {}): LinkRecord => ({ ...emptyLinkRecord('r', 'b/0', E, 7), ...extra });

describe('nextInOrder (receiver)', () => {
  it('takes the next number, drops what is applied, waits at a gap', () => {
    expect(nextInOrder([data(1), data(2)], pos(E, 0)).next?.seq).toBe(1);
    const r = nextInOrder([data(1), data(2), data(3)], pos(E, 1));
    expect(r.inbox.map((m) => m.seq)).toEqual([2, 3]);
    expect(r.next?.seq).toBe(2);
    expect(nextInOrder([data(3)], pos(E, 1)).next).toBeUndefined();
  });

  it('continues after base - 1 (everything below base was acknowledged before)', () => {
    expect(nextInOrder([data(5, { base: 5 })], pos(0, 0)).next?.seq).toBe(5);
    expect(nextInOrder([data(4, { base: 3 }), data(5, { base: 5 })], pos(0, 0)).next?.seq).toBe(5);
  });

  it('a newer epoch supersedes the current one; an older one is stale', () => {
    const r = nextInOrder([data(5), data(1, { epoch: E + 1 })], pos(E, 4));
    expect(r.inbox).toEqual([data(1, { epoch: E + 1 })]);
    expect(r.next?.epoch).toBe(E + 1);
    expect(nextInOrder([data(3, { epoch: E - 1 })], pos(E, 0))).toEqual({ inbox: [], next: undefined });
  });

  it('law: whatever the arrival order and duplicates, messages are applied exactly once, in order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }).chain((n) => fc.tuple(fc.constant(n), fc.array(fc.integer({ min: 1, max: n }), { minLength: n, maxLength: 3 * n }))), ([n, arrivals]) => {
        // Every message arrives at least once, in a random order, some several times.
        const order = [...arrivals, ...Array.from({ length: n }, (_, i) => i + 1)];
        let rec = record();
        let p = pos(0, 0);
        const applied: number[] = [];
        for (const seq of order) {
          const a = admit(rec, p, data(seq), 1000);
          if (a.kind === 'buffered' && a.record) rec = a.record;
          for (;;) {
            const { inbox, next } = nextInOrder(rec.inbox, p);
            rec = { ...rec, inbox };
            if (!next) break;
            applied.push(next.seq);
            p = pos(next.epoch, next.seq);
          }
        }
        expect(applied).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      }),
    );
  });
});

describe('admit (receiver)', () => {
  it('re-acks a duplicate of the current epoch, drops a stale epoch silently', () => {
    expect(admit(record(), pos(E, 3), data(2), 10)).toEqual({ kind: 'duplicate', ack: 3 });
    expect(admit(record(), pos(E, 3), data(9, { epoch: E - 1 }), 10)).toEqual({ kind: 'duplicate' });
  });

  it('buffers in order, refuses beyond the bound, keeps the larger base of a retransmission', () => {
    const a = admit(record({ inbox: [data(3)] }), pos(E, 0), data(2), 10);
    expect(a.kind === 'buffered' && a.record?.inbox.map((m) => m.seq)).toEqual([2, 3]);
    expect(admit(record({ inbox: [data(3)] }), pos(E, 0), data(4), 1)).toEqual({ kind: 'full' });
    expect(admit(record({ inbox: [data(3)] }), pos(E, 0), data(3), 1)).toEqual({ kind: 'buffered', record: undefined });
    const b = admit(record({ inbox: [data(3)] }), pos(E, 0), data(3, { base: 3 }), 1);
    expect(b.kind === 'buffered' && b.record?.inbox[0]?.base).toBe(3);
  });
});

describe('sender decisions', () => {
  it('queues only newer versions unless forced, and bounds the outbox keeping the newest', () => {
    const q = { relationId: 'r', from: 'a/0', to: 'b/0', force: false, maxOutbox: 2, ifaceVersion: '1.0.0' };
    expect(queueData(record({ queuedVersion: 3 }), state(3), q)).toBeUndefined();
    const forced = queueData(record({ queuedVersion: 3, nextSeq: 4 }), state(3), { ...q, force: true });
    expect(forced?.message).toMatchObject({ seq: 4, base: 4, version: 3, epoch: E, inc: 7 });
    const r = queueData(record({ nextSeq: 3, outbox: [data(1), data(2)] }), state(5), q)!;
    expect(r.record.outbox.map((m) => m.seq)).toEqual([2, 3]);
    expect(r.message.base).toBe(2);
    expect(r.record).toMatchObject({ nextSeq: 4, queuedVersion: 5 });
  });

  it('stamps the interface version, and re-queues the current bag when that version changed (charm upgrade)', () => {
    const q = { relationId: 'r', from: 'a/0', to: 'b/0', force: false, maxOutbox: 2, ifaceVersion: '2.0.0' };
    const first = queueData(record({ nextSeq: 1 }), state(3), q)!;
    expect(first.message.ifaceVersion).toBe('2.0.0');
    expect(first.record.queuedIfaceVersion).toBe('2.0.0');
    expect(queueData(first.record, state(3), q)).toBeUndefined();
    const upgraded = queueData(first.record, state(3), { ...q, ifaceVersion: '1.1.0' });
    expect(upgraded?.message).toMatchObject({ version: 3, ifaceVersion: '1.1.0' });
    // A record stored before versions were sent (no queuedIfaceVersion) does not re-queue.
    expect(queueData(record({ queuedVersion: 3 }), state(3), q)).toBeUndefined();
  });

  it('retransmits the head of the outbox with base recomputed', () => {
    const out = retransmission(record({ outbox: [data(4, { base: 2 }), data(5, { base: 2 }), data(6, { base: 2 })] }), 2);
    expect(out.map((m) => [m.seq, m.base])).toEqual([
      [4, 4],
      [5, 4],
    ]);
  });

  it('an ack releases what it covers; an ack of another epoch is stale', () => {
    const rec = record({ outbox: [data(1), data(2), data(3)] });
    expect(acknowledge(rec, { epoch: E, seq: 2 })?.outbox.map((m) => m.seq)).toEqual([3]);
    expect(acknowledge(rec, { epoch: E + 1, seq: 3 })).toBeUndefined();
    expect(acknowledge(rec, { epoch: E, seq: 0 })).toBeUndefined();
  });

  it('answers a pull: resend the outbox, else send the current bag when the receiver is behind or on another epoch', () => {
    const pull = (p: Partial<PullMessage>): PullMessage => ({ v: 1, type: 'pull', rel: 'r', from: 'b/0', to: 'a/0', epoch: E, expect: 1, viewInc: 7, version: 3, ...p });
    expect(answerPull(record({ outbox: [data(1)] }), state(3), pull({}))).toBe('retransmit');
    expect(answerPull(record(), state(3), pull({}))).toBe('nothing');
    expect(answerPull(record(), state(4), pull({}))).toBe('send-current');
    expect(answerPull(record(), state(3), pull({ epoch: E - 1 }))).toBe('send-current');
    expect(answerPull(record(), state(1), pull({ viewInc: 6, version: 9 }))).toBe('send-current');
  });
});

describe('shouldPull (receiver)', () => {
  const view = (incarnation: number, version: number): UnitView => ({ bag: {}, incarnation, version, status: 'ok', missingKeys: [], invalidKeys: [], problems: [] });
  const sync = (p: Partial<SyncMessage>): SyncMessage => ({ v: 1, type: 'sync', rel: 'r', from: 'a/0', to: 'b/0', epoch: E, inc: 7, version: 5, appVersion: 0, lastSeq: 5, ...p });
  it('pulls when behind with nothing newer buffered', () => {
    expect(shouldPull(view(7, 4), 0, pos(E, 4), [], sync({}))).toBe(true);
    expect(shouldPull(view(7, 5), 0, pos(E, 5), [], sync({}))).toBe(false);
    expect(shouldPull(view(7, 4), 0, pos(E, 4), [data(5, { version: 5, inc: 7 })], sync({}))).toBe(false);
    expect(shouldPull(view(6, 99), 0, pos(E, 4), [], sync({}))).toBe(true);
    expect(shouldPull(view(7, 5), 1, pos(E, 5), [], sync({ appVersion: 2 }))).toBe(true);
  });
});
