/**
 * Bind, advertise, profile and the secure-by-default rule (config parsing
 * and the start-up network plan, without starting agents).
 */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../src/config';
import { parseHostPort, resolveAdvertise } from '../../src/internal/address';
import { planNetwork } from '../../src/internal/network-plan';

const base = { unit: 'web/0', charmDir: '/c', dataDir: '/d' };
const ifaces = {
  lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00', internal: true, cidr: '127.0.0.1/8' }],
  eth0: [
    { address: 'fe80::1', netmask: 'ffff::', family: 'IPv6', mac: '01', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
    { address: '10.231.0.7', netmask: '255.255.255.0', family: 'IPv4', mac: '01', internal: false, cidr: '10.231.0.7/24' },
  ],
} as unknown as NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]>;

describe('HOST[:PORT]', () => {
  it('parses hosts, ports and bracketed IPv6', () => {
    expect(parseHostPort('10.0.0.5:7946', 'bind')).toEqual({ host: '10.0.0.5', port: 7946 });
    expect(parseHostPort('0.0.0.0', 'bind')).toEqual({ host: '0.0.0.0', port: undefined });
    expect(parseHostPort('[fd00::5]:7946', 'bind')).toEqual({ host: 'fd00::5', port: 7946 });
    expect(parseHostPort('::', 'bind')).toEqual({ host: '::', port: undefined });
    expect(parseHostPort('node-1.example:80', 'bind')).toEqual({ host: 'node-1.example', port: 80 });
  });
  it('rejects what is not an address, saying the form', () => {
    for (const bad of ['10.0.0.5:99999', '10.0.0.5:x', '[fd00::5', '[10.0.0.5]:1', 'a b', ':7946', 'fd00::zz']) {
      expect(() => parseHostPort(bad, '--bind'), bad).toThrow(/HOST\[:PORT\]/);
    }
  });
});

describe('agent config: addresses and profile', () => {
  it('bind sets host and port; the aliases still work; both at once is refused', () => {
    const c = parseAgentConfig({ ...base, bind: '0.0.0.0:7946', advertise: '10.231.0.7', keyringFile: '/k' });
    expect([c.bindHost, c.bindPort, c.advertise]).toEqual(['0.0.0.0', 7946, { host: '10.231.0.7', port: undefined }]);
    const a = parseAgentConfig({ ...base, bindHost: '127.0.0.1', bindPort: 5 });
    expect([a.bindHost, a.bindPort]).toEqual(['127.0.0.1', 5]);
    expect(() => parseAgentConfig({ ...base, bind: '0.0.0.0', bindHost: '127.0.0.1' })).toThrow(/either bind/);
  });
  it("defaults the port to Serf's 7946 off loopback and to a free one (0) on loopback; an explicit port wins", () => {
    const port = (extra: Record<string, unknown>): number => parseAgentConfig({ ...base, insecure: true, ...extra }).bindPort;
    expect(port({})).toBe(0);
    expect(port({ bind: '127.0.0.1' })).toBe(0);
    expect(port({ bind: 'localhost' })).toBe(0);
    expect(port({ bind: '0.0.0.0' })).toBe(7946);
    expect(port({ bind: '10.0.0.5' })).toBe(7946);
    expect(port({ bindHost: '10.0.0.5' })).toBe(7946);
    expect(port({ bind: '0.0.0.0:0' })).toBe(0);
    expect(port({ bind: '10.0.0.5:8301' })).toBe(8301);
  });
  it('defaults the profile to local on loopback and lan elsewhere; rejects unknown ones', () => {
    expect(parseAgentConfig(base).profile).toBe('local');
    expect(parseAgentConfig({ ...base, bind: '0.0.0.0', insecure: true }).profile).toBe('lan');
    expect(parseAgentConfig({ ...base, bind: '10.0.0.5', profile: 'wan', insecure: true }).profile).toBe('wan');
    expect(() => parseAgentConfig({ ...base, profile: 'fast' })).toThrow(/profile/);
  });
  it('checks labels and seeds', () => {
    expect(parseAgentConfig({ ...base, label: 'rhizome-hadoop' }).label).toBe('rhizome-hadoop');
    expect(() => parseAgentConfig({ ...base, label: 'has space' })).toThrow(/label/);
    expect(parseAgentConfig({ ...base, seeds: ['[fd00::1]:7946', '10.0.0.1:7946'] }).seeds).toHaveLength(2);
  });
});

describe('advertise', () => {
  it('a wildcard bind advertises the first non-loopback IPv4 address, never the wildcard', () => {
    const r = resolveAdvertise('0.0.0.0', undefined, ifaces);
    expect(r.advertiseHost).toBe('10.231.0.7');
    expect(r.chosen?.iface).toBe('eth0');
    expect(() => resolveAdvertise('0.0.0.0', undefined, { lo: ifaces['lo'] })).toThrow(/--advertise/);
    expect(() => resolveAdvertise('0.0.0.0', { host: '0.0.0.0', port: undefined })).toThrow(/wildcard/);
  });
  it('a specific bind is its own advertise address; an explicit one wins', () => {
    expect(resolveAdvertise('10.0.0.5', undefined).advertiseHost).toBe('10.0.0.5');
    expect(resolveAdvertise('0.0.0.0', { host: '10.0.0.9', port: 8000 })).toMatchObject({ advertiseHost: '10.0.0.9', advertisePort: 8000 });
  });
  it('a fixed advertise address gets the bound port, picked before binding when 0', async () => {
    const plan = await planNetwork(parseAgentConfig({ ...base, bind: '127.0.0.1', advertise: '127.0.0.2', keyringFile: '/k' }));
    expect(plan.advertiseAddress).toMatch(/^127\.0\.0\.2:\d+$/);
    expect(plan.bindPort).toBe(Number(plan.advertiseAddress!.split(':')[1]));
    const fixed = await planNetwork(parseAgentConfig({ ...base, bind: '127.0.0.1:23100', advertise: '127.0.0.3' }));
    expect(fixed.advertiseAddress).toBe('127.0.0.3:23100');
  });
  it('picks the remembered port again while it is free, another once it is taken', async () => {
    const config = parseAgentConfig({ ...base, bind: '127.0.0.1', advertise: '127.0.0.2', keyringFile: '/k' });
    const first = await planNetwork(config);
    const again = await planNetwork(config, first.bindPort);
    expect(again.bindPort).toBe(first.bindPort);
    expect(again.advertiseAddress).toBe(`127.0.0.2:${first.bindPort}`);
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(first.bindPort, '127.0.0.1', r));
    try {
      const other = await planNetwork(config, first.bindPort);
      expect(other.bindPort).not.toBe(first.bindPort);
      expect(other.bindPort).toBeGreaterThan(0);
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });
});

describe('secure by default', () => {
  it('refuses a non-loopback bind without a keyring, saying how to make one', async () => {
    const err = await planNetwork(parseAgentConfig({ ...base, bind: '0.0.0.0' })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'AGENT_ERR_INSECURE' });
    expect((err as Error).message).toMatch(/rhizome keygen/);
    expect((err as Error).message).toMatch(/--insecure/);
  });
  it('allows it with --insecure (marked insecure) or with a keyring; loopback needs neither', async () => {
    expect((await planNetwork(parseAgentConfig({ ...base, bind: '127.0.0.1', insecure: true }))).insecure).toBe(false);
    expect((await planNetwork(parseAgentConfig(base))).insecure).toBe(false);
  });
});
