#!/usr/bin/env node
// The `rhizome` command: the compiled CLI (`pnpm build` writes dist/), in this process.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write(`error: ${fileURLToPath(entry)} does not exist; run 'pnpm build' in the repository first\n`);
  process.exit(1);
}
await import(entry.href);
