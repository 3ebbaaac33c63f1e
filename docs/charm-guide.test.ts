/**
 * Keeps docs/charm-guide.md honest:
 *   - every code block in a language (ts, json, yaml, jinja) follows an
 *     `<!-- include: PATH -->` marker and equals that file, byte for byte;
 *     those files are the guide's charms, run by their own tests (in
 *     charms/guide-greeter/test and charms/guide-listener/test) and loaded
 *     here by the agent's real charm loader;
 *   - every `sh` block follows a `<!-- run: NAME -->` marker and is run here,
 *     line by line, against real agents (`pnpm rhizome` is the compiled CLI;
 *     `.rhizome/` is a temporary RHIZOME_HOME), with checks of what each
 *     command printed or rendered.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientFor, readDeployment, unitOf, type AgentStatus } from '../packages/agent/src/index';
import { buildHandlers, loadCharm } from '../packages/agent/src/testing';
import { cliEntry } from '../packages/agent/src/cli';
import { until } from '@rhizome/test-support';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const GUIDE = readFileSync(join(ROOT, 'docs/charm-guide.md'), 'utf8');
/** The compiled CLI (`pnpm build`), as `pnpm rhizome` runs it. */
const CLI = cliEntry();

interface Block {
  readonly lang: string;
  readonly body: string;
  readonly line: number;
  readonly marker?: { readonly kind: 'include' | 'run'; readonly arg: string };
}

/** The fenced blocks of a Markdown text, each with the marker comment right above it (if any). */
function blocksOf(md: string): Block[] {
  const lines = md.split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    if (i >= lines.length) throw new Error(`unclosed code block at line ${start + 1}`);
    let j = start - 1;
    while (j >= 0 && lines[j]!.trim() === '') j--;
    const m = j >= 0 ? /^<!-- (include|run): (\S+) -->$/.exec(lines[j]!.trim()) : null;
    out.push({ lang: open[1]!, body: `${body.join('\n')}\n`, line: start + 1, ...(m ? { marker: { kind: m[1] as 'include' | 'run', arg: m[2]! } } : {}) });
  }
  return out;
}

const blocks = blocksOf(GUIDE);
const CODE_LANGS = new Set(['ts', 'typescript', 'json', 'yaml', 'yml', 'jinja']);

describe('docs/charm-guide.md samples', () => {
  it('has the samples this test expects', () => {
    expect(blocks.filter((b) => b.marker?.kind === 'include').length).toBeGreaterThanOrEqual(8);
    expect(blocks.filter((b) => b.marker?.kind === 'run').map((b) => b.marker!.arg)).toEqual(['greetings', 'failure']);
  });

  it('every code block is a verbatim copy of a file of the repository', async () => {
    for (const b of blocks) {
      if (!CODE_LANGS.has(b.lang)) continue;
      expect(b.marker?.kind, `the ${b.lang} block at docs/charm-guide.md:${b.line} needs an <!-- include: PATH --> marker`).toBe('include');
      const file = await readFile(join(ROOT, b.marker!.arg), 'utf8');
      expect(b.body, `docs/charm-guide.md:${b.line} differs from ${b.marker!.arg}; copy the file into the guide again`).toBe(file.endsWith('\n') ? file : `${file}\n`);
    }
  });

  it('every shell block is run by this test', () => {
    for (const b of blocks) if (b.lang === 'sh') expect(b.marker?.kind, `the sh block at docs/charm-guide.md:${b.line} is not run by a test`).toBe('run');
  });

  it("the guide's charms load and build their handlers in the agent's loader", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'guide-load-'));
    try {
      for (const name of ['guide-greeter', 'guide-listener']) {
        const charm = await loadCharm(join(ROOT, 'charms', name));
        expect(charm.metadata.name).toBe(name);
        const log = { info() {}, warn() {}, error() {}, debug() {} };
        const handlers = buildHandlers(charm, { unit: `${name}/0`, service: name, dir, address: '127.0.0.1', config: { ...charm.definition.config }, log });
        expect(handlers.length).toBeGreaterThanOrEqual(3);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

let home = '';

/** Runs one line of a guide's shell block, as a reader would in the repository root. */
function sh(line: string, timeoutMs = 180_000): Promise<Ran> {
  const prelude = `pnpm() { if [ "$1" = rhizome ]; then shift; node "$CLI" "$@"; else echo "the guide only runs 'pnpm rhizome'" >&2; return 2; fi; }`;
  const command = line.replace(/(^|[\s'"])\.rhizome\//g, `$1${home}/`);
  return new Promise((done, fail) => {
    const child = spawn('bash', ['-c', `${prelude}\n${command}`], { cwd: ROOT, env: { ...process.env, RHIZOME_HOME: home, CLI }, stdio: ['ignore', 'pipe', 'pipe'], detached: false });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`\`${line}\` did not finish within ${timeoutMs} ms; output so far: ${stdout}${stderr}`));
    }, timeoutMs);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** Re-runs `line` until `ok` accepts its result (bounded), returning that result. */
function eventually(line: string, ok: (r: Ran) => boolean, timeoutMs = 90_000): Promise<Ran> {
  return until(
    `\`${line}\` to give the expected result`,
    async () => {
      const r = await sh(line);
      if (ok(r)) return r;
      throw new Error(`exit ${r.code}\n${r.stdout}${r.stderr}`);
    },
    { timeoutMs, intervalMs: 500 },
  );
}

/** Polls a unit's control API (cheaper than a CLI process per poll) until `ok` holds (bounded). */
async function unitReaches(deployment: string, unit: string, what: string, ok: (s: { status: AgentStatus; facts: Record<string, unknown> }) => boolean, timeoutMs = 90_000): Promise<void> {
  await until(
    `${unit}: ${what}`,
    async () => {
      const client = await clientFor(unitOf(await readDeployment(home, deployment), unit), 5_000);
      const status = await client.get<AgentStatus>('/status');
      const facts = await client.get<Record<string, unknown>>('/facts');
      if (ok({ status, facts })) return true;
      throw new Error(JSON.stringify({ engine: status.engine, workload: status.workload, facts }));
    },
    { timeoutMs, intervalMs: 250 },
  );
}

/** What to check after a line (first match wins); any other line must exit 0. */
type Check = readonly [RegExp, (r: Ran, line: string) => Promise<void> | void];

async function walk(name: string, checks: readonly Check[]): Promise<void> {
  const block = blocks.find((b) => b.marker?.kind === 'run' && b.marker.arg === name);
  expect(block, `no <!-- run: ${name} --> block in the guide`).toBeDefined();
  const lines = block!.body.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  const used = new Set<Check>();
  for (const line of lines) {
    const check = checks.find(([re]) => re.test(line));
    // A `cat` of a file the agents render may race the render: retry it.
    const r = /^cat /.test(line) ? await eventually(line, (x) => x.code === 0) : await sh(line);
    expect(r.code, `\`${line}\` failed:\n${r.stdout}${r.stderr}`).toBe(0);
    if (check) {
      used.add(check);
      await check[1](r, line);
    }
  }
  expect(used.size, `every check of walkthrough ${name} should match a line of the guide`).toBe(checks.length);
}

describe('docs/charm-guide.md walkthroughs, on real agents', () => {
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'rhizome-guide-'));
  });
  afterAll(async () => {
    for (const d of ['greetings', 'sites']) await sh(`pnpm rhizome destroy ${d}`, 60_000).catch(() => undefined);
    await rm(home, { recursive: true, force: true });
  }, 120_000);

  it('6. relate services: deploy the greetings bundle, read status and files, add a unit', { timeout: 400_000 }, async () => {
    await walk('greetings', [
      [/status$/, (r) => expect(r.stdout).toMatch(/greeter\/0.*active.*says "Hoi" to listener\/0, listener\/1/)],
      [/listener-0\/unit\/heard\.txt$/, (r) => expect(r.stdout).toBe('greeter/0 says "Hoi" to listener/0\n')],
      [/listener-2\/unit\/heard\.txt$/, (r) => expect(r.stdout).toBe('greeter/0 says "Hoi" to listener/2\n')],
      [
        /facts greeter\/0$/,
        async (r) => {
          await unitReaches('greetings', 'greeter/0', 'an audience of three listeners', ({ facts }) => JSON.stringify(facts['greeter.audience']) === '["listener/0","listener/1","listener/2"]');
          expect(r.stdout).toContain('greeter.audience');
        },
      ],
      [/run greeter\/0 greet name=ada times=2$/, (r) => expect(r.stdout).toMatch(/^greeter\/0: greet completed in .*\n {2}said: Hoi, ada! Hoi, ada!$/m)],
    ]);
  });

  it('7. a failing handler: status names it, compensation cleaned up, resolve retries', { timeout: 400_000 }, async () => {
    await walk('failure', [
      [/event provision '\{"site":"blog"\}'$/, () => unitReaches('sites', 'sites/0', 'blog provisioned', ({ facts }) => facts['sites.blog'] !== undefined)],
      [/event provision '\{"site":"shop"\}'$/, () => unitReaches('sites', 'sites/0', 'the engine in error', ({ status }) => status.engine.state === 'error' && status.engine.error?.handler === 'register-site')],
      [
        /status$/,
        async (r) => {
          // The first status (in error) or the last (after resolve).
          if (r.stdout.includes('is full')) {
            expect(r.stdout).toMatch(/sites\/0\*? +error +error /);
            expect(r.stdout).toContain('1 site: blog');
            expect(r.stdout).toContain('is full (1 of max-sites 1)');
            expect(r.stdout).toContain("rhizome resolve sites/0");
          } else {
            // After resolve: the retried run committed (the resolve check waited for it).
            expect(r.stdout).toContain('2 sites: blog, shop');
            await unitReaches('sites', 'sites/0', 'idle again', ({ status }) => status.engine.state === 'idle' && status.engine.error === undefined);
          }
        },
      ],
      [/runs sites\/0$/, (r) => expect(r.stdout.match(/register-site/g)?.length ?? 0).toBeGreaterThanOrEqual(3)],
      [/^ls /, (r) => expect(r.stdout.trim()).toBe('blog')],
      [/resolve sites\/0$/, () => unitReaches('sites', 'sites/0', 'shop provisioned', ({ facts }) => facts['sites.shop'] !== undefined)],
    ]);
  });
});
