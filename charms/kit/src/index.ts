export { http, type HttpWebData } from './interfaces/http';
export { dfsSlave, DFS_DEFAULT_PORT, DFS_DEFAULT_WEBHDFS_PORT, type DfsSlaveNamenodeData, type DfsSlaveDatanodeData } from './interfaces/dfs-slave';
export { writeFileAtomic } from './write-file-atomic';
export { renderHadoopXml, parseHadoopXml } from './hadoop-xml';
export type { HadoopProperties } from './hadoop-xml';
export { naturalSort, unitLabel } from './sort';
export { hostPort } from './host-port';
export { testUnit } from './testing';
export type { TestUnit, TestUnitOptions } from './testing';
