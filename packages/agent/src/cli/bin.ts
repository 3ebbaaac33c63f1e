/**
 * The `rhizome` command's entry point: the only module that runs the CLI.
 * Nothing else (cli/main.ts included) has side effects on import, so loading
 * the package's index, whatever the process's argv, never runs a command.
 */
import { main } from './main';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`error: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
