/**
 * `dfs-slave`: how an HDFS datanode finds its namenode.
 *
 * The namenode side (provides) publishes where the filesystem lives; the
 * datanode side (requires) publishes where the datanode can be reached.
 */
import * as z from 'zod';
import { defineInterface } from '@rhizome/relations';

/** The namenode's default RPC port (fs.defaultFS). */
export const DFS_DEFAULT_PORT = 8020;
/** The namenode's default WebHDFS (HTTP) port. */
export const DFS_DEFAULT_WEBHDFS_PORT = 50070;

const port = z.number().int().min(1).max(65535);

export const dfsSlave = defineInterface({
  name: 'dfs-slave',
  version: '1.0.0',
  provides: z.object({
    /** Hostnames of the namenodes (one, or two for HA). */
    namenodes: z.array(z.string().min(1)).min(1),
    port,
    'webhdfs-port': port,
    clustername: z.string().min(1),
  }),
  requires: z.object({
    /** The datanode's address (IP or resolvable name). */
    address: z.string().min(1),
    hostname: z.string().min(1).optional(),
  }),
});

export type DfsSlaveNamenodeData = z.output<typeof dfsSlave.schemas.provides>;
export type DfsSlaveDatanodeData = z.output<typeof dfsSlave.schemas.requires>;
