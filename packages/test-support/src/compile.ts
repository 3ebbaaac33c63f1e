/**
 * `compileFixture(file)`: a TypeScript test fixture (a child process's main
 * file) compiled to one plain JavaScript file that `node` runs without a
 * TypeScript loader, as the agents and the CLI run compiled code.
 *
 * esbuild bundles the fixture with everything it imports (our sources and
 * npm packages), so the output runs from anywhere; CommonJS dependencies get
 * a `require`. One compile per file per test process (about 0.1 s), into a
 * temporary directory removed when the process exits. Fixtures that read
 * `import.meta.url` would see the bundle's location: ours take paths from
 * their environment instead.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { build } from 'esbuild';

const REQUIRE_BANNER = "import { createRequire as __fixtureRequire } from 'node:module'; const require = __fixtureRequire(import.meta.url);";

let outDir: string | undefined;
const compiled = new Map<string, Promise<string>>();

function output(): string {
  if (outDir === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'rhizome-fixtures-'));
    outDir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return outDir;
}

/** The path of `file` compiled to an ES module (cached for this process). */
export function compileFixture(file: string): Promise<string> {
  let done = compiled.get(file);
  if (done === undefined) {
    const out = join(output(), `${compiled.size}-${basename(file).replace(/\.ts$/, '')}.mjs`);
    done = build({
      entryPoints: [file],
      outfile: out,
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      banner: { js: REQUIRE_BANNER },
      sourcemap: 'inline',
      logLevel: 'warning',
    }).then(() => out);
    compiled.set(file, done);
  }
  return done;
}
