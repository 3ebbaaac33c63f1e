/**
 * The zookeeper charm's options. Ports are bases: unit N listens on base + N,
 * so several units fit on one machine (and on separate hosts nothing
 * collides either). All ports are high; the system service's 2181 is never used.
 */
import * as z from 'zod';
import type { Json } from '@rhizome/engine';

export const DEFAULT_ZOOKEEPER_CONFIG = Object.freeze({
  'client-port': 12181,
  'quorum-port': 12888,
  'election-port': 13888,
  /** ZooKeeper's tick (ms): session and sync timeouts are multiples of it. */
  'tick-ms': 500,
  /** Java heap of each server, MB. */
  'heap-mb': 128,
  java: 'java',
  /** Where Debian's package puts ZooKeeper's jars and scripts. */
  'zookeeper-home': '/usr/share/zookeeper',
}) satisfies Record<string, Json>;

const port = z.number().int().min(1024).max(65000);
const schema = z.object({
  'client-port': port,
  'quorum-port': port,
  'election-port': port,
  'tick-ms': z.number().int().min(50).max(10_000),
  'heap-mb': z.number().int().min(32).max(65_536),
  java: z.string().min(1),
  'zookeeper-home': z.string().min(1),
});

export interface ZookeeperConfig {
  readonly clientPort: number;
  readonly quorumPort: number;
  readonly electionPort: number;
  readonly tickMs: number;
  readonly heapMb: number;
  readonly java: string;
  readonly zookeeperHome: string;
}

export function parseZookeeperConfig(raw: Readonly<Record<string, Json>>): ZookeeperConfig {
  const parsed = schema.safeParse({ ...DEFAULT_ZOOKEEPER_CONFIG, ...raw });
  if (!parsed.success) {
    throw new Error(`invalid zookeeper options: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const c = parsed.data;
  return {
    clientPort: c['client-port'],
    quorumPort: c['quorum-port'],
    electionPort: c['election-port'],
    tickMs: c['tick-ms'],
    heapMb: c['heap-mb'],
    java: c.java,
    zookeeperHome: c['zookeeper-home'],
  };
}
