import { parseCharmMetadata } from '../src/metadata';

export const namenodeMeta = parseCharmMetadata({
  name: 'hdfs-namenode',
  provides: { datanode: { interface: 'dfs-slave' } },
  peers: { cluster: { interface: 'hdfs-peers' } },
});

export const datanodeMeta = parseCharmMetadata({
  name: 'hdfs-datanode',
  requires: { namenode: { interface: 'dfs-slave' } },
});

export const webMeta = parseCharmMetadata({
  name: 'web',
  provides: { website: { interface: 'http' } },
  requires: { backend: { interface: 'dfs-slave' } },
});

export const lbMeta = parseCharmMetadata({
  name: 'lb',
  requires: { backends: { interface: 'http' } },
  provides: { frontend: { interface: 'http' } },
});

export const NAMENODE_DATA = { namenodes: ['nn0.example'], port: 8020, 'webhdfs-port': 50070, clustername: 'c1' };
