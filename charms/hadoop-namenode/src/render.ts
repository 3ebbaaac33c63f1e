/**
 * The namenode's workload files, as pure functions of what it knows, so the
 * handlers only decide *when* to write and tests can compare whole files.
 */
import { join } from 'node:path';
import { hostPort, renderHadoopXml } from '@rhizome-charms/kit';
import type { NamenodeConfig } from './config';

export const FILES = Object.freeze({ coreSite: 'core-site.xml', hdfsSite: 'hdfs-site.xml', workers: 'workers' });

export function defaultFS(address: string, cfg: NamenodeConfig): string {
  return `hdfs://${hostPort(address, cfg.port)}`;
}

export function renderCoreSite(address: string, cfg: NamenodeConfig): string {
  return renderHadoopXml([['fs.defaultFS', defaultFS(address, cfg)]], `core-site.xml of cluster ${cfg.clustername}, rendered by the hadoop-namenode charm`);
}

export function renderHdfsSite(dir: string, address: string, cfg: NamenodeConfig, liveDatanodes: number): string {
  return renderHadoopXml(
    [
      ['dfs.namenode.name.dir', `file://${join(dir, 'name')}`],
      ['dfs.namenode.rpc-address', hostPort(address, cfg.port)],
      ['dfs.namenode.http-address', hostPort(address, cfg.webhdfsPort)],
      ['dfs.webhdfs.enabled', true],
      // More replicas than datanodes would leave every block under-replicated.
      ['dfs.replication', Math.max(1, Math.min(cfg.replication, liveDatanodes))],
    ],
    `hdfs-site.xml of cluster ${cfg.clustername}, rendered by the hadoop-namenode charm`,
  );
}

/** One datanode per line, in the order given (already sorted), ending with a newline unless empty. */
export function renderWorkers(workers: readonly string[]): string {
  return workers.length === 0 ? '' : `${workers.join('\n')}\n`;
}
