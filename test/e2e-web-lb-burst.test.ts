/**
 * Issue 14, "bursts converge in one pass", on real agents: the web-lb
 * bundle deployed without its relation, then `relate web:website
 * lb:backends` with 3 web units. The lb must render its nginx upstream with
 * ONE playbook run (configure-nginx executed once after the relate), and
 * nginx must reach all 3 units. Prints the playbook count and the time from
 * the relate to a converged deployment.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientFor, deploy, destroy, readDeployment, relate, unitOf } from '@rhizome/agent';
import { converge, ROOT, writeBundle, stopLeftoverNginx } from './e2e-support';
import { freePort, until } from '@rhizome/test-support';

const NAME = 'web-lb';
let home = '';
let port = 0;
let bundle = '';

interface RunSummary {
  readonly runId: string;
  readonly eventLabel: string;
  readonly outcome: string;
  readonly startedAt: number;
  readonly durationMs: number;
  readonly batched?: readonly string[];
  readonly steps: readonly { readonly handler: string; readonly outcome: string }[];
}

/** Handlers of the lb that run the playbook. */
const PLAYBOOK_HANDLERS = new Set(['start-nginx', 'configure-nginx', 'restart-nginx']);

async function lbRuns(): Promise<RunSummary[]> {
  const d = await readDeployment(home, NAME);
  const client = await clientFor(unitOf(d, 'lb/0'), 5_000);
  return client.get<RunSummary[]>('/runs');
}

/** Runs the playbook ran in (an attempt that failed counts too: it ran ansible). */
function playbookRuns(runs: readonly RunSummary[]): RunSummary[] {
  return runs.filter((r) => r.steps.some((s) => PLAYBOOK_HANDLERS.has(s.handler)));
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'rhizome-e2e-burst-'));
  port = await freePort();
  const example = await readFile(join(ROOT, 'examples/web-lb/bundle.yaml'), 'utf8');
  expect(example).toContain('port: 18480');
  expect(example).toContain('  - [lb:backends, web:website]');
  // The example without its relation: the test relates the services itself, as an operator would.
  const unrelated = example
    .replace('port: 18480', `port: ${port}`)
    .replace(/charm: \.\.\/\.\.\/charms\//g, 'charm: charms/')
    .replace('  - [lb:backends, web:website]', '')
    .replace(/^relations:$/m, 'relations: []');
  bundle = await writeBundle(home, unrelated);
});
afterAll(async () => {
  await destroy(home, { deployment: NAME, keep: true }).catch(() => undefined);
  await stopLeftoverNginx(home, NAME);
  await rm(home, { recursive: true, force: true });
}, 60_000);

describe('relate web:website lb:backends with 3 web units', () => {
  it('converges with one playbook run on the lb', { timeout: 300_000 }, async () => {
    await deploy(bundle, { home, timeoutMs: 180_000, noFsync: true });
    // Before the relate: nginx started with no backend (start-nginx), nothing else ran the playbook.
    const before = await lbRuns();
    const playbooksBefore = playbookRuns(before).length;
    const lastRun = before.at(-1)?.runId;

    const t0 = Date.now();
    await relate(await readDeployment(home, NAME), 'web:website', 'lb:backends');
    // Converged: the lb's nginx serves all three, and every link is quiet.
    const want = 'web/0,web/1,web/2';
    await until(`nginx on ${port} to reach ${want}`, async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 12; i++) {
        const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } });
        seen.add((await res.text()).trim());
      }
      return [...seen].sort().join(',') === want ? true : undefined;
    }, { timeoutMs: 120_000, intervalMs: 200 });
    const reachedMs = Date.now() - t0;
    await converge(home, NAME, 120_000);
    const convergedMs = Date.now() - t0;

    const runs = await lbRuns();
    const after = runs.slice(runs.findIndex((r) => r.runId === lastRun) + 1);
    const playbooks = playbookRuns(after);
    // startedAt is the agent's monotonic clock: offsets from the first run after the relate.
    const start = after[0]?.startedAt ?? 0;
    const summary = after.map((r) => `${r.runId} at +${Math.round(r.startedAt - start)} ms for ${Math.round(r.durationMs)} ms: ${r.eventLabel}${r.batched ? ` +[${r.batched.join('; ')}]` : ''}: ${r.steps.map((s) => s.handler).join(' ') || '-'}`);
    console.log(
      `relate web:website lb:backends (3 web units): ${playbooks.length} playbook run(s) on lb/0, ${after.length} run(s); ` +
        `nginx reached all 3 after ${reachedMs} ms, converged after ${convergedMs} ms\n  ${summary.join('\n  ')}`,
    );
    expect(playbooksBefore).toBeGreaterThanOrEqual(1);
    expect(playbooks.map((r) => r.outcome)).toEqual(['committed']);
    expect(playbooks[0]!.steps.filter((s) => s.handler === 'configure-nginx')).toHaveLength(1);
  });
});
