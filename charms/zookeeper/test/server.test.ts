/**
 * The zookeeper charm's pure parts: server identity and ports per unit,
 * ZooKeeper's config lines both ways, and the super-user digest (checked
 * against the value ZooKeeper's own DigestAuthenticationProvider prints for
 * `super:rhizome-secret`).
 */
import { describe, expect, it } from 'vitest';
import { parseZookeeperConfig } from '../src/config';
import { clientConnectString } from '../src/interfaces';
import { parseConfigVersion, parseServerLines, renderDynamicConfig, renderStaticConfig, serverLine, serverOf, superDigest } from '../src/server';

const cfg = parseZookeeperConfig({});

describe('zookeeper server identity', () => {
  it('gives unit N id N+1 and ports base+N', () => {
    expect(serverOf('zookeeper/0', '10.0.0.5', cfg)).toEqual({ id: 1, host: '10.0.0.5', quorumPort: 12888, electionPort: 13888, clientPort: 12181 });
    expect(serverOf('zk/7', '10.0.0.5', cfg)).toMatchObject({ id: 8, clientPort: 12188 });
    expect(() => serverOf('zk/255', 'h', cfg)).toThrow(/ids are 1-255/);
  });

  it('refuses bad options with the option named', () => {
    expect(() => parseZookeeperConfig({ 'client-port': 80 })).toThrow(/client-port/);
    expect(() => parseZookeeperConfig({ 'heap-mb': 'lots' })).toThrow(/heap-mb/);
  });
});

describe('zookeeper config lines', () => {
  const a = serverOf('zk/0', '10.0.0.5', cfg);
  const b = serverOf('zk/2', '10.0.0.7', cfg);

  it('round-trips server lines, sorted by id', () => {
    expect(serverLine(a)).toBe('server.1=10.0.0.5:12888:13888:participant;10.0.0.5:12181');
    expect(parseServerLines(renderDynamicConfig([b, a]))).toEqual([a, b]);
  });

  it('reads a conf answer: membership and version, other lines ignored', () => {
    const conf = ['clientPort=12181', 'dataDir=/x/version-2', 'membership: ', serverLine(b), 'server.1=10.0.0.5:12888:13888:participant;0.0.0.0:12181', 'version=100000002'].join('\n');
    expect(parseServerLines(conf).map((s) => s.id)).toEqual([1, 3]);
    expect(parseConfigVersion(conf)).toBe('100000002');
    expect(parseConfigVersion('no version here')).toBeUndefined();
  });

  it('renders a static config that enables reconfig and never the AdminServer', () => {
    const text = renderStaticConfig('/u', cfg);
    expect(text).toContain('reconfigEnabled=true');
    expect(text).toContain('standaloneEnabled=false');
    expect(text).toContain('admin.enableServer=false');
    expect(text).toContain('dynamicConfigFile=/u/zk/conf/zoo.cfg.dynamic');
  });

  it('computes the super digest as ZooKeeper does', () => {
    expect(superDigest('rhizome-secret')).toBe('super:EE+55iM1Ct0kAsYp50Jh3/EKams=');
  });

  it('joins client addresses into a connection string', () => {
    expect(clientConnectString([{ data: { host: 'a', port: 1 } }, { data: { host: 'b', port: 2 } }])).toBe('a:1,b:2');
  });
});
