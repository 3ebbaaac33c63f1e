/**
 * Charm authoring: `rhizome build-charm DIR` (type-check and compile a
 * charm, as deploy does; prints the compiled module) and `rhizome init
 * charm NAME` (a new charm folder, see charm/scaffold.ts). Both load their
 * modules on demand: other commands never pay for esbuild or TypeScript.
 */
import type { Command } from 'commander';
import { printJson } from '../output';
import type { GlobalOptions } from '../target';

export function registerCharm(program: Command, globals: () => GlobalOptions): void {
  program
    .command('build-charm')
    .description("type-check a charm folder's charm.ts and compile it for the agents (deploy does this too)")
    .argument('<dir>', 'the charm folder (holding charm.ts)')
    .option('--no-typecheck', 'skip the type check (esbuild only strips types)')
    .action(async (dir: string, flags: { typecheck?: boolean }) => {
      const { buildCharm } = await import('../../charm/compile');
      const started = Date.now();
      const r = await buildCharm(dir, { typecheck: flags.typecheck !== false });
      if (globals().json) printJson({ ...r, ms: Date.now() - started });
      else process.stdout.write(`${r.module}\n${r.cached ? 'cached' : 'compiled'}${r.typechecked ? ', type-checked' : ''} in ${Date.now() - started} ms\n`);
    });
  const init = program.command('init').description('create something new (see: rhizome init charm --help)');
  init
    .command('charm')
    .description('scaffold a charm folder: charm.ts, an interface, a scenario test, a one-unit bundle')
    .argument('<name>', 'charm name (lowercase letters, digits, dashes); the folder ./<name>')
    .option('--dir <parent>', 'where to create the folder (default: the current directory)')
    .action(async (name: string, flags: { dir?: string }) => {
      const { scaffoldCharm } = await import('../../charm/scaffold');
      const r = await scaffoldCharm(name, flags.dir);
      if (globals().json) {
        printJson(r);
        return;
      }
      process.stdout.write(`created ${r.dir}: ${r.files.join(', ')}\n`);
      if (r.linkedTo) process.stdout.write(`node_modules/rhizome -> ${r.linkedTo}\n`);
      process.stdout.write(`next: cd ${name} && npm install && npx vitest run && rhizome deploy bundle.yaml\n`);
    });
  init.exitOverride();
}
