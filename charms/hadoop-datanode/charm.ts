/**
 * hadoop-datanode: an HDFS datanode. Requires `namenode` (dfs-slave): it
 * publishes its address and hostname for the namenode's `workers` file (the
 * option `hostname`, else its advertised address: names that resolve on the
 * other machines; see datanodeHostname) and
 * renders core-site.xml (fs.defaultFS from the namenode's data) and
 * hdfs-site.xml in its unit directory. Without a namenode it is
 * `blocked: waiting for namenode`.
 */
import { defineCharm } from '@rhizome/agent';
import { dfsSlave } from '@rhizome-charms/kit';
import { datanodeHandlers } from './src/handlers';

export default defineCharm({
  metadata: {
    name: 'hadoop-datanode',
    description: 'HDFS datanode: renders its Hadoop config from the related namenode',
    requires: { namenode: { interface: 'dfs-slave', limit: 1 } },
  },
  interfaces: [dfsSlave],
  // '' = the unit's advertised address (or its label on loopback).
  config: { hostname: '' },
  handlers: datanodeHandlers,
});
