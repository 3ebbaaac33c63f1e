/**
 * hadoop-namenode: the HDFS namenode. Provides `datanode` (dfs-slave): it
 * publishes where the filesystem lives and keeps the `workers` file in its
 * unit directory equal to the live, related datanodes. Hadoop itself is not
 * installed; the rendered files (core-site.xml, hdfs-site.xml, workers) are
 * the workload.
 */
import { defineCharm } from '@rhizome/agent';
import { dfsSlave } from '@rhizome-charms/kit';
import { DEFAULT_NAMENODE_CONFIG } from './src/config';
import { namenodeHandlers } from './src/handlers';

export default defineCharm({
  metadata: {
    name: 'hadoop-namenode',
    description: 'HDFS namenode: publishes fs.defaultFS to datanodes and lists them in workers',
    provides: { datanode: { interface: 'dfs-slave' } },
  },
  interfaces: [dfsSlave],
  config: DEFAULT_NAMENODE_CONFIG,
  handlers: namenodeHandlers,
});
