/**
 * The datanode's workload files, as pure functions of its namenode's
 * published data, so handlers only decide when to write.
 */
import { join } from 'node:path';
import { hostPort, renderHadoopXml, type DfsSlaveNamenodeData } from '@rhizome-charms/kit';

export const FILES = Object.freeze({ coreSite: 'core-site.xml', hdfsSite: 'hdfs-site.xml' });

export function defaultFS(nn: DfsSlaveNamenodeData): string {
  return `hdfs://${hostPort(nn.namenodes[0]!, nn.port)}`;
}

export function renderCoreSite(nn: DfsSlaveNamenodeData): string {
  return renderHadoopXml([['fs.defaultFS', defaultFS(nn)]], `core-site.xml of cluster ${nn.clustername}, rendered by the hadoop-datanode charm`);
}

export function renderHdfsSite(dir: string, hostname: string, nn: DfsSlaveNamenodeData): string {
  return renderHadoopXml(
    [
      ['dfs.datanode.data.dir', `file://${join(dir, 'data')}`],
      ['dfs.datanode.hostname', hostname],
      ['dfs.namenode.rpc-address', hostPort(nn.namenodes[0]!, nn.port)],
      ['dfs.namenode.http-address', hostPort(nn.namenodes[0]!, nn['webhdfs-port'])],
    ],
    `hdfs-site.xml of cluster ${nn.clustername}, rendered by the hadoop-datanode charm`,
  );
}
