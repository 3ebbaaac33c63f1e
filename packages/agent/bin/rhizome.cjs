#!/usr/bin/env node
// The `rhizome` command: the compiled CLI (`pnpm build` writes dist/), in this process.
// CommonJS, like dist/rhizome.cjs, so a quick command never starts Node's ES module loader.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const entry = join(__dirname, '..', 'dist', 'rhizome.cjs');
if (!existsSync(entry)) {
  process.stderr.write(`error: ${entry} does not exist; run 'pnpm build' in the repository first\n`);
  process.exit(1);
}
require(entry);
