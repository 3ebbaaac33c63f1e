/**
 * What a `rhizome` command line asks for, read before anything is loaded:
 * the launcher (launcher.ts) and the full CLI (main.ts) both decide from it
 * which code to load. No imports: the launcher must stay tiny.
 */

/** Global options that take a value (their value is not the command). */
const GLOBAL_WITH_VALUE = new Set(['--home', '--deployment', '--data-dir', '--agent', '--token']);

/** The command word of a command line (the first argument that is neither an option nor a global option's value). */
export function commandOf(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (GLOBAL_WITH_VALUE.has(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/**
 * Commands the quick CLI (quick.ts, one CommonJS file) answers without the
 * full CLI's module graph: the ones an operator runs all day.
 */
export const QUICK_COMMANDS: ReadonlySet<string> = new Set(['status', 'members', 'facts', 'runs', 'version']);
