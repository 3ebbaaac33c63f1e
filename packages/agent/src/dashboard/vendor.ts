/**
 * The dashboard page's one browser module: htm + Preact in one ES module
 * (the `htm` package's preact/standalone build), served as
 * /vendor/htm-preact.js. Where it is read from: a file beside the running
 * module when there is one (on a machine, the release puts it beside the
 * single-file agent.mjs, which has no node_modules to resolve `htm` in),
 * else the `htm` package.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The name of the copy beside a bundled agent. */
export const VENDOR_FILE = 'htm-preact.js';

/** The standalone build in the installed `htm` package. */
export function htmStandaloneFile(): string {
  // htm's main file is dist/htm.js; preact/standalone.module.js (no imports) is beside dist/.
  const main = createRequire(import.meta.url).resolve('htm');
  return join(dirname(main), '..', 'preact', 'standalone.module.js');
}

/** The script, from beside the running module (a machine's agent.mjs), else from the `htm` package. */
export async function readVendorScript(): Promise<string> {
  try {
    return await readFile(join(dirname(fileURLToPath(import.meta.url)), VENDOR_FILE), 'utf8');
  } catch {
    return readFile(htmStandaloneFile(), 'utf8');
  }
}
