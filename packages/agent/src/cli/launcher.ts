/**
 * The `rhizome` command (built to dist/rhizome.cjs, CommonJS): the quick
 * CLI (dist/quick.cjs) for the commands it holds, the full CLI (the ES
 * module dist/bin.js) for every other. Like bin.ts, the only modules with
 * side effects; nothing imports them.
 */
import { commandOf, QUICK_COMMANDS } from './command-line';

declare const require: (id: string) => unknown;

const argv = process.argv.slice(2);
const command = commandOf(argv);
if (command !== undefined && QUICK_COMMANDS.has(command)) {
  // The build keeps this require as it is: dist/quick.cjs sits beside this file.
  const { runQuick } = require('./quick.cjs') as typeof import('./quick');
  runQuick(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`error: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
} else {
  void import('./bin.js');
}
