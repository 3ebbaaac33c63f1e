/**
 * The files of a charm's folder that its compiled module does not contain,
 * copied to a machine beside it (release.ts): an Ansible playbook and its
 * templates, a script, data. Code is left out (it is in charm.mjs), and so
 * are node_modules, dist and dot entries, as the charm compiler leaves them
 * out of its hash. Bounded: a charm folder that holds a data set or a build
 * tree by mistake is refused with what to move, not copied to every machine.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { AgentError } from '../errors';

/** At most this many files besides the code (a playbook with its roles fits many times over). */
export const MAX_CHARM_ASSET_FILES = 500;
/** At most this many bytes of them in all: each machine gets a copy. */
export const MAX_CHARM_ASSET_BYTES = 16 * 1024 * 1024;

const CODE = /\.(?:[cm]?ts|[cm]?js|map|tsbuildinfo)$/;
const SKIPPED_DIRS = new Set(['node_modules', 'dist']);

export interface CharmAsset {
  /** Path inside the charm's folder, with `/`. */
  readonly name: string;
  readonly bytes: Buffer;
  /** 0755 when the file is executable, else 0644. */
  readonly mode: number;
}

/** The charm folder's non-code files, sorted by name. */
export async function charmAssets(charmDir: string): Promise<CharmAsset[]> {
  const out: CharmAsset[] = [];
  let total = 0;
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith('.') || (e.isDirectory() && SKIPPED_DIRS.has(e.name))) continue;
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        await walk(path);
        continue;
      }
      if (CODE.test(e.name)) continue;
      // A symbolic link is followed only to a file (one to a directory could loop).
      const s = await stat(path).catch(() => undefined);
      if (!s?.isFile()) continue;
      const bytes = await readFile(path);
      total += bytes.length;
      const name = relative(charmDir, path).split(sep).join('/');
      if (out.length >= MAX_CHARM_ASSET_FILES || total > MAX_CHARM_ASSET_BYTES) {
        throw new AgentError(
          'AGENT_ERR_CHARM_LOAD',
          `the charm in ${charmDir} has more than ${MAX_CHARM_ASSET_FILES} files or ${MAX_CHARM_ASSET_BYTES / 1024 / 1024} MiB besides its code (at ${name}), which deploy would copy to every machine; move data and build output out of the charm's folder (node_modules, dist and dot folders are skipped)`,
        );
      }
      out.push({ name, bytes, mode: s.mode & 0o111 ? 0o755 : 0o644 });
    }
  };
  await walk(charmDir);
  return out;
}
