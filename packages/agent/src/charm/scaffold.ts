/**
 * `rhizome init charm NAME`: a charm folder anywhere, outside any
 * repository, that type-checks, tests and deploys against the installed
 * rhizome package:
 *
 *   NAME/package.json      depends on the rhizome package (file: link to this install)
 *   NAME/tsconfig.json     strict, bundler resolution
 *   NAME/charm.ts          the charm: writes a file, says it is active, offers an interface
 *   NAME/src/<name>.ts     the interface (zod schemas, through rhizome/zod)
 *   NAME/test/charm.test.ts  a scenario test (`npx vitest run`)
 *   NAME/bundle.yaml       one unit: `rhizome deploy bundle.yaml`
 *
 * node_modules/rhizome is linked to this install, so the folder type-checks
 * and deploys without a network; `npm install` (vitest) keeps that link.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { AgentError } from '../errors';
import { agentPackageRoot, agentVersion } from '../runtime';

const NAME_RE = /^[a-z][a-z0-9-]{0,62}$/;

export interface ScaffoldResult {
  readonly dir: string;
  readonly files: readonly string[];
  /** The rhizome package the folder is linked to (undefined inside the repository: workspace packages). */
  readonly linkedTo?: string;
}

/** The installed `rhizome` package folder this CLI belongs to, if it runs from one (not from the repository). */
export function releasedPackageRoot(): string | undefined {
  // An install is <rhizome>/node_modules/@rhizome/agent.
  const agent = agentPackageRoot();
  const candidate = dirname(dirname(dirname(agent)));
  if (basename(dirname(dirname(agent))) !== 'node_modules') return undefined;
  try {
    const file = join(candidate, 'package.json');
    if (!existsSync(file)) return undefined;
    return candidate;
  } catch {
    return undefined;
  }
}

function files(name: string, version: string, link: string | undefined): Record<string, string> {
  const iface = `${name}-info`;
  const camel = name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  return {
    'package.json': `${JSON.stringify(
      {
        name,
        version: '0.1.0',
        private: true,
        type: 'module',
        description: `The ${name} charm`,
        scripts: { test: 'vitest run', check: 'tsc --noEmit', deploy: 'rhizome deploy bundle.yaml' },
        dependencies: { rhizome: link !== undefined ? `file:${link}` : `^${version}` },
        devDependencies: { vitest: '4.1.12' },
      },
      null,
      2,
    )}\n`,
    'tsconfig.json': `${JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2023'],
          module: 'ESNext',
          moduleResolution: 'bundler',
          types: ['node'],
          typeRoots: ['./node_modules/@types', './node_modules/rhizome/node_modules/@types'],
          strict: true,
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          isolatedModules: true,
          verbatimModuleSyntax: true,
          skipLibCheck: true,
          noEmit: true,
        },
        include: ['charm.ts', 'src', 'test'],
      },
      null,
      2,
    )}\n`,
    [`src/${iface}.ts`]: `import * as z from 'rhizome/zod';
import { defineInterface } from 'rhizome/relations';

/** \`${iface}\`: what a ${name} unit tells the units related to it. */
export const ${camel}Info = defineInterface({
  name: '${iface}',
  version: '1.0.0',
  provides: z.object({ unit: z.string().min(1), message: z.string() }),
  requires: z.object({}),
});
`,
    'charm.ts': `import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineCharm, type UnitContext } from 'rhizome';
import { all, event, fact, relationFact, type HandlerContext } from 'rhizome/engine';
import { relation } from 'rhizome/relations';
import { ${camel}Info } from './src/${iface}';

export default defineCharm({
  metadata: {
    name: '${name}',
    provides: { info: { interface: '${iface}' } },
  },
  interfaces: [${camel}Info],
  config: { message: 'hello' },
  // unit.config: these defaults, the bundle's options, then 'rhizome config ${name} message=...';
  // on a change the handlers are built again from it and config.changed is raised.
  handlers: (unit) => {
    const message = unit.config['message'];
    if (typeof message !== 'string') throw new Error(\`option "message" must be a string, got \${JSON.stringify(message)}\`);
    const say = async (ctx: HandlerContext, u: UnitContext) => {
      await writeFile(join(u.dir, 'message.txt'), \`\${message}\\n\`);
      ctx.set('${name}.ready');
      ctx.setStatus('active', \`says "\${message}"\`);
    };
    return [
      { name: 'install', atStartup: true, run: (ctx) => say(ctx, unit) },
      { name: 'reconfigure', when: event('config.changed'), run: (ctx) => say(ctx, unit) },
      {
        name: 'share',
        when: all(fact('${name}.ready'), relationFact('info', 'joined')),
        run(ctx) {
          // Read through ctx, so a config change runs this again (a handler re-runs when what it read changed).
          ctx.get('config');
          relation(ctx, 'info', ${camel}Info.provider).publish({ unit: unit.unit, message });
        },
      },
    ];
  },
});
`,
    'test/charm.test.ts': `import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { UnitContext } from 'rhizome';
import { runRelationScenario } from 'rhizome/relations/testing';
import charm from '../charm';

it('writes its message and says it is active', async () => {
  const dir = await mkdtemp(join(tmpdir(), '${name}-'));
  try {
    const log = { info() {}, warn() {}, error() {}, debug() {} };
    const unit: UnitContext = { unit: '${name}/0', service: '${name}', dir, address: '127.0.0.1', config: { message: 'hi' }, log };
    const out = await runRelationScenario({ handlers: charm.handlers(unit), unit: unit.unit });
    expect(await readFile(join(dir, 'message.txt'), 'utf8')).toBe('hi\\n');
    expect(out.facts['workload.status']).toEqual({ state: 'active', message: 'says "hi"' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
`,
    'bundle.yaml': `# rhizome deploy bundle.yaml
name: ${name}
services:
  ${name}:
    charm: .
    units: 1
    options: { message: hello }
`,
    '.gitignore': 'node_modules/\n',
    'README.md': `# ${name}

A Rhizome charm. \`charm.ts\` is the charm, \`src/${iface}.ts\` its interface.

    npx vitest run                 # the scenario test (npm install first for vitest)
    rhizome build-charm .          # type-check and compile (deploy does it too)
    rhizome deploy bundle.yaml     # one unit; rhizome status; rhizome destroy ${name}
`,
  };
}

/** Writes a new charm folder `<parent>/<name>`; refuses to touch an existing one. */
export async function scaffoldCharm(name: string, parent = process.cwd()): Promise<ScaffoldResult> {
  if (!NAME_RE.test(name)) {
    throw new AgentError('AGENT_ERR_BAD_OPTIONS', `a charm name is lowercase letters, digits and dashes, starting with a letter (e.g. "my-charm"), got ${JSON.stringify(name)}`);
  }
  const dir = resolve(parent, name);
  if (existsSync(dir)) throw new AgentError('AGENT_ERR_BAD_OPTIONS', `${dir} already exists; choose another name or remove it`);
  const link = releasedPackageRoot();
  const content = files(name, agentVersion(), link);
  for (const [rel, text] of Object.entries(content)) {
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    await writeFile(join(dir, rel), text, { flag: 'wx' });
  }
  if (link !== undefined) {
    // What `npm install` makes of the file: dependency, without a network.
    await mkdir(join(dir, 'node_modules'), { recursive: true });
    await symlink(link, join(dir, 'node_modules', 'rhizome'), 'dir');
  }
  // Sanity: the written package.json parses (a template bug must not ship a broken folder).
  JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
  return Object.freeze({ dir, files: Object.keys(content), ...(link !== undefined ? { linkedTo: link } : {}) });
}
