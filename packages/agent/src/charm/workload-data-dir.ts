import { isAbsolute, normalize } from 'node:path';

/** A workload's `dataDir` as a charm may declare it: absolute, normalized, at least three levels deep (never `/var/lib` itself). */
export function isWorkloadDataDir(dir: unknown): dir is string {
  return typeof dir === 'string' && isAbsolute(dir) && normalize(dir) === dir && !dir.endsWith('/') && dir.split('/').filter(Boolean).length >= 3;
}
