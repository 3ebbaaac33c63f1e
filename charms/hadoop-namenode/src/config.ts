/**
 * The namenode's config: the charm's defaults merged with the bundle's
 * `options`, checked once here (it comes from a YAML file a person wrote).
 */
import { DFS_DEFAULT_PORT, DFS_DEFAULT_WEBHDFS_PORT } from '@rhizome-charms/kit';
import type { Json } from '@rhizome/engine';

export interface NamenodeConfig {
  readonly clustername: string;
  /** What datanodes and clients reach the namenode at: this option, else the unit's advertised address. */
  readonly hostname: string;
  readonly port: number;
  readonly webhdfsPort: number;
  readonly replication: number;
}

export const DEFAULT_NAMENODE_CONFIG = Object.freeze({
  /** Shown in the rendered files and published to datanodes. */
  clustername: 'rhizome',
  /** A DNS name for the namenode (fs.defaultFS, published to datanodes); '' = the unit's advertised address. */
  hostname: '',
  /** The namenode's RPC port, the one in fs.defaultFS (Hadoop's default). */
  port: DFS_DEFAULT_PORT,
  /** WebHDFS / web UI port (Hadoop 2's default). */
  'webhdfs-port': DFS_DEFAULT_WEBHDFS_PORT,
  /** Block replication; clamped to the number of live datanodes when rendered. */
  'dfs.replication': 3,
}) satisfies Record<string, Json>;

export class NamenodeConfigError extends Error {
  readonly code = 'HADOOP_ERR_BAD_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'NamenodeConfigError';
  }
}

function port(v: Json | undefined, key: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    throw new NamenodeConfigError(`hadoop-namenode option "${key}" must be a port number (1-65535), got ${JSON.stringify(v)}; fix it in the bundle's options`);
  }
  return v;
}

/** Checks the merged config of a namenode unit. */
export function parseNamenodeConfig(raw: Readonly<Record<string, Json>>): NamenodeConfig {
  const c: Record<string, Json> = { ...DEFAULT_NAMENODE_CONFIG, ...raw };
  if (typeof c.clustername !== 'string' || !/^[a-z][a-z0-9-]*$/.test(c.clustername)) {
    throw new NamenodeConfigError(`hadoop-namenode option "clustername" must be lowercase letters, digits and dashes (e.g. "demo"), got ${JSON.stringify(c.clustername)}`);
  }
  const replication = c['dfs.replication'];
  if (typeof replication !== 'number' || !Number.isInteger(replication) || replication < 1) {
    throw new NamenodeConfigError(`hadoop-namenode option "dfs.replication" must be a positive integer, got ${JSON.stringify(replication)}`);
  }
  if (typeof c.hostname !== 'string' || (c.hostname !== '' && !/^[A-Za-z0-9.:[\]-]{1,253}$/.test(c.hostname))) {
    throw new NamenodeConfigError(`hadoop-namenode option "hostname" must be a host name or address (or '' for the unit's address), got ${JSON.stringify(c.hostname)}`);
  }
  return { clustername: c.clustername, hostname: c.hostname, port: port(c.port, 'port'), webhdfsPort: port(c['webhdfs-port'], 'webhdfs-port'), replication };
}
