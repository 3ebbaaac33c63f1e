/** `rhizome run UNIT ACTION key=value ...`: how the texts become an action's parameters (readActionParams). */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { readActionParams } from '../../src/charm/actions';
import { actionHandlers } from '../../src/charm/actions';
import { defineAction, defineCharm, type UnitContext } from '../../src/charm/define';

const charm = defineCharm({
  metadata: { name: 'params' },
  handlers: () => [],
  actions: {
    put: { params: z.object({ key: z.string().min(1), value: z.string(), ttl: z.number().int().max(60).optional() }), run: () => null },
    loose: { params: z.looseObject({ key: z.string() }), run: () => null },
    free: { run: () => null },
  },
});

describe('action parameters from key=value texts', () => {
  it('takes JSON where the schema wants it and the text where it wants a string', () => {
    expect(readActionParams(charm, 'put', { key: 'a', value: '1', ttl: '30' })).toEqual({ key: 'a', value: '1', ttl: 30 });
    expect(readActionParams(charm, 'put', { key: '0042', value: 'true' })).toEqual({ key: '0042', value: 'true' });
  });
  it('names only the parameters that are wrong either way', () => {
    const err = (() => {
      try {
        readActionParams(charm, 'put', { value: '1', ttl: '90' });
      } catch (e) {
        return e as { code?: string; message: string };
      }
      return undefined;
    })();
    expect(err?.code).toBe('AGENT_ERR_ACTION');
    expect(err?.message).toMatch(/key: /);
    expect(err?.message).toMatch(/ttl: .*60/);
    expect(err?.message).not.toMatch(/value: /);
  });
  it('refuses a misspelled parameter instead of dropping it, naming the real ones', () => {
    expect(() => readActionParams(charm, 'put', { key: 'a', value: 'b', tll: '5' })).toThrow(/action "put" has no parameter "tll"; its parameters are key, ttl, value/);
    // A schema that keeps unknown keys, or none at all, takes them.
    expect(readActionParams(charm, 'loose', { key: 'a', extra: '1' })).toEqual({ key: 'a', extra: 1 });
    expect(readActionParams(charm, 'free', { anything: 'x' })).toEqual({ anything: 'x' });
  });
});

describe('defineAction: parameters typed by the schema', () => {
  it("gives run the schema's output type, and the checked values (defaults applied)", async () => {
    const seen: unknown[] = [];
    const rotate = defineAction({
      description: 'rotate the logs',
      params: z.object({ keep: z.number().int().min(1).max(30).default(7), tag: z.string().optional() }),
      run: (_ctx, params) => {
        expectTypeOf(params.keep).toEqualTypeOf<number>();
        expectTypeOf(params.tag).toEqualTypeOf<string | undefined>();
        // @ts-expect-error: not a parameter of this schema
        void params.kep;
        seen.push(params);
        return { kept: params.keep };
      },
    });
    const typed = defineCharm({ metadata: { name: 'typed' }, handlers: () => [], actions: { rotate } });
    const params = readActionParams(typed, 'rotate', {});
    expect(params).toEqual({ keep: 7 });
    expect(() => readActionParams(typed, 'rotate', { keep: '0' })).toThrow(/invalid parameters for action "rotate": keep: /);
    expect(() => readActionParams(typed, 'rotate', { kep: '3' })).toThrow(/action "rotate" has no parameter "kep"; its parameters are keep, tag/);
    // The action's handler hands run what readActionParams made of the texts.
    const results = new Map();
    const [handler] = actionHandlers(typed, () => ({}) as UnitContext, results);
    await handler!.run({ event: { kind: 'internal', name: 'action.rotate', payload: params }, runId: 'r1' } as never);
    expect(seen).toEqual([{ keep: 7 }]);
    expect(results.get('r1')).toEqual({ kept: 7 });
  });
});
