import { describe, expect, it } from 'vitest';
import { ALIVE, FAILED, MemberColumns, MemberRef, identities } from '../src/internal/member-table';
import { seededRandom } from '../src/prng';

// Names unique to this file: the registry is process-wide.
const uniq = (s: string): string => `member-table-test/${s}`;

describe('member table (columns, shared identities)', () => {
  it('two nodes holding one member share its identity; the name is freed when the last lets go, and its id reused', () => {
    const random = seededRandom(1);
    const a = new MemberColumns();
    const b = new MemberColumns();
    const tags = { role: 'db' };
    const id = a.add(uniq('x'), '10.0.0.1:1', tags, 3, ALIVE, 0, random);
    expect(b.add(uniq('x'), '10.0.0.1:1', { role: 'db' }, 5, FAILED, 7, random)).toBe(id);
    // Same identity (equal tags interned once), columns per node.
    expect(a.ident[id]).toBe(b.ident[id]);
    expect([a.inc[id], a.status[id], b.inc[id], b.status[id], b.changedAt(id)]).toEqual([3, ALIVE, 5, FAILED, 7]);
    expect(new MemberRef(b, id, uniq('x')).tags).toEqual(tags);

    a.remove(id);
    expect(a.has(id)).toBe(false);
    expect(identities.nameId(uniq('x'))).toBe(id);
    expect(identities.withAddr('10.0.0.1:1')).toHaveLength(1);
    b.remove(id);
    expect(identities.nameId(uniq('x'))).toBeUndefined();
    expect(identities.withAddr('10.0.0.1:1')).toBeUndefined();
    // A view held across the reap reads as failed, not as whoever takes the id next.
    const stale = new MemberRef(b, id, uniq('x'));
    const reused = b.add(uniq('y'), '10.0.0.2:1', {}, 1, ALIVE, 0, random);
    expect(reused).toBe(id);
    expect(stale.present).toBe(false);
    expect(stale.status).toBe('failed');
    b.remove(reused);
  });

  it('a new address or tags is a new identity; the old one is freed when unused', () => {
    const random = seededRandom(2);
    const a = new MemberColumns();
    const id = a.add(uniq('m'), '10.0.0.3:1', {}, 1, ALIVE, 0, random);
    a.setIdentity(id, '10.0.0.4:1', { v: '2' });
    expect(a.addrOf(id)).toBe('10.0.0.4:1');
    expect(a.tagsOf(id)).toEqual({ v: '2' });
    expect(identities.withAddr('10.0.0.3:1')).toBeUndefined();
    a.releaseAll();
    expect(identities.nameId(uniq('m'))).toBeUndefined();
  });

  it('push-pull entries are shared while current and name their identity out of sight of encoders', () => {
    const random = seededRandom(5);
    const t = new MemberColumns();
    const id = t.add(uniq('w'), 'sim://w', { r: '1' }, 3, ALIVE, 0, random);
    const iid = t.ident[id] as number;
    const e = identities.wireEntry(iid, 3, ALIVE);
    expect(identities.wireEntry(iid, 3, ALIVE)).toBe(e);
    expect(Object.keys(e)).toEqual(['n', 'a', 'i', 's', 'g']);
    expect(JSON.parse(JSON.stringify(e))).toEqual({ n: uniq('w'), a: 'sim://w', i: 3, s: 0, g: { r: '1' } });
    expect(identities.identityOfEntry(e)).toBe(iid);
    expect(identities.identityOfEntry({ ...e })).toBeUndefined(); // a copy (or a decoded entry) is looked up by name
    const next = identities.wireEntry(iid, 4, ALIVE);
    expect(next).not.toBe(e);
    expect(identities.identityOfEntry(e)).toBeUndefined(); // superseded
    t.releaseAll();
    expect(identities.identityOfEntry(next)).toBeUndefined(); // freed
  });

  it('incarnations past 32 bits widen the column without losing the others', () => {
    const random = seededRandom(4);
    const t = new MemberColumns();
    const a = t.add(uniq('i1'), 'sim://i1', {}, 7, ALIVE, 0, random);
    const b = t.add(uniq('i2'), 'sim://i2', {}, 2 ** 32 - 1, ALIVE, 0, random);
    expect(t.inc).toBeInstanceOf(Uint32Array);
    t.setInc(b, 2 ** 32 + 5);
    expect([t.inc[a], t.inc[b]]).toEqual([7, 2 ** 32 + 5]);
    t.add(uniq('i3'), 'sim://i3', {}, 1, ALIVE, 0, random); // growth keeps the wide column
    expect(t.inc[b]).toBe(2 ** 32 + 5);
    t.releaseAll();
  });

  it('the probe order holds every member once, in a seeded random order, and survives growth and removal', () => {
    const random = seededRandom(3);
    const t = new MemberColumns();
    const ids = Array.from({ length: 300 }, (_, i) => t.add(uniq(`o${i}`), `sim://o${i}`, {}, 1, ALIVE, 0, random));
    const order = Array.from(t.order.subarray(0, t.size));
    expect([...order].sort((x, y) => x - y)).toEqual([...ids].sort((x, y) => x - y));
    expect(order).not.toEqual(ids); // random insertion positions, not join order
    const gone = ids.filter((_, i) => i % 3 === 0);
    for (const id of gone) t.remove(id);
    const left = Array.from(t.order.subarray(0, t.size));
    expect(left).toEqual(order.filter((id) => !gone.includes(id)));
    for (const id of ids) expect(t.has(id)).toBe(!gone.includes(id));
    t.releaseAll();
    for (let i = 0; i < 300; i++) expect(identities.nameId(uniq(`o${i}`))).toBeUndefined();
  });
});
