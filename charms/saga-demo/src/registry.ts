/**
 * The local site registry: a JSON file `{ "sites": { "<name>": { unit, path } } }`
 * standing in for any external system a charm registers with (a DNS zone, a
 * service catalogue). Written atomically; bounded by `max-sites`.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '@rhizome-charms/kit';

export interface RegistryEntry {
  readonly unit: string;
  readonly path: string;
}
export interface Registry {
  readonly sites: Readonly<Record<string, RegistryEntry>>;
}

export async function readRegistry(file: string): Promise<Registry> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (text === undefined) return { sites: {} };
  const parsed: unknown = JSON.parse(text);
  if (parsed === null || typeof parsed !== 'object' || typeof (parsed as Registry).sites !== 'object' || (parsed as Registry).sites === null) {
    throw new Error(`${file} is not a site registry (expected {"sites": {...}}); move it away or fix it`);
  }
  return parsed as Registry;
}

export async function writeRegistry(file: string, registry: Registry): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(registry, null, 2)}\n`);
}
