import { describe, expect, it } from 'vitest';
import { DEFAULT_LAN_PROFILE, DEFAULT_WAN_PROFILE, LOCAL_PROFILE, PROFILES, profileByName, resolveProfile } from '../src/index';

describe('timing profiles by name', () => {
  it('maps local, lan and wan to their profiles, each valid', () => {
    expect(profileByName('local')).toBe(LOCAL_PROFILE);
    expect(profileByName('lan')).toBe(DEFAULT_LAN_PROFILE);
    expect(profileByName('wan')).toBe(DEFAULT_WAN_PROFILE);
    for (const p of Object.values(PROFILES)) expect(resolveProfile(p)).toEqual(p);
  });

  it('wan has memberlist DefaultWANConfig timings', () => {
    expect(DEFAULT_WAN_PROFILE).toMatchObject({
      gossipInterval: 500, gossipNodes: 4, gossipToTheDeadTime: 60_000, probeInterval: 5_000, probeTimeout: 3_000,
      suspicionMult: 6, pushPullInterval: 60_000, joinTimeout: 30_000, indirectChecks: 3, retransmitMult: 4,
    });
  });

  it('refuses unknown names with the list of known ones', () => {
    expect(() => profileByName('fast')).toThrow(/unknown profile "fast"; use one of local, lan, wan/);
    expect(() => profileByName('__proto__')).toThrow(TypeError);
  });
});
