/**
 * scripts/check-cycles.mjs (part of `pnpm lint`) finds import cycles inside
 * a package, type-only and dynamic imports included, and passes a package
 * whose imports only go one way. Run on throwaway packages in a temp dir.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('../scripts/check-cycles.mjs', import.meta.url));
let root = '';

async function pkg(files: Record<string, string>): Promise<void> {
  root = await mkdtemp(join(tmpdir(), 'rz-cycles-'));
  for (const [path, text] of Object.entries(files)) {
    const file = join(root, 'packages', 'p', 'src', path);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, text);
  }
}

function check(): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, root], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

afterEach(async () => {
  if (root) await rm(root, { recursive: true, force: true });
  root = '';
});

describe('check-cycles', () => {
  it('passes imports that only go one way', async () => {
    await pkg({
      'index.ts': "export { a } from './a';\nexport type { T } from './internal/types';\n",
      'a.ts': "import type { T } from './internal/types';\nimport { b } from './b';\nexport const a = (t: T) => b(t);\n",
      'b.ts': "import type { T } from './internal/types';\nexport const b = (t: T) => t;\n",
      'internal/types.ts': 'export type T = number;\n',
    });
    expect(check()).toMatchObject({ status: 0, out: 'no import cycles\n' });
  });

  it('finds a cycle through a type-only import and names its files', async () => {
    await pkg({
      'agent.ts': "import { routes } from './control/routes';\nexport class Agent { r = routes; }\n",
      'control/routes.ts': "import type { Agent } from '../agent';\nexport const routes = (a: Agent) => a;\n",
    });
    const r = check();
    expect(r.status).toBe(1);
    expect(r.out).toContain('import cycle in @rhizome/p: agent.ts <-> control/routes.ts');
  });

  it('finds a cycle through a dynamic import and a multi-line import', async () => {
    await pkg({
      'a.ts': "export async function a() {\n  const { b } = await import('./b');\n  return b;\n}\n",
      'b.ts': "import {\n  a,\n} from './a';\nexport const b = a;\n",
      'c.ts': "import { a } from './a';\nexport const c = a;\n",
    });
    const r = check();
    expect(r.status).toBe(1);
    expect(r.out).toContain('a.ts <-> b.ts');
    expect(r.out).not.toContain('c.ts');
  });
});
