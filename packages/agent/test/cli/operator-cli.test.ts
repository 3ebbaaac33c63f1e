/**
 * The operator's commands against a real deployment (agents as processes on
 * 127.0.0.1, the cluster fixture bundle), each with its error paths:
 * `status` (selectors, --state, plain rows, JSON errors, --watch, a killed
 * unit), `logs` (merged by time, include/exclude, level, an exec step's
 * output under its run, --follow as a real process), `event` (members it was
 * queued to) and `query` (answers as they arrive, totals, ends once all answered).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusSummary } from '../../src/cli/status/model';
import type { LogRecord } from '../../src/log/log-tail';
import { readDeployment } from '../../src/deploy/deployment';
import { rhizomeCommand } from '../../src/runtime';
import { okIn, rhizomeIn } from './harness';
import { until } from '@rhizome/test-support';

const BUNDLE = join(import.meta.dirname, '../fixtures/bundles/cluster.yaml');
const UNIT_ROW = /^[\w-]+\/\d+\*?\s/;

let home = '';
const rhizome = (...args: string[]) => rhizomeIn(home, ...args);
const ok = (...args: string[]) => okIn(home, ...args);

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'rz-ops-cli-'));
  await ok('deploy', BUNDLE, '--timeout', '90', '--no-fsync');
}, 120_000);
afterAll(async () => {
  await rhizome('destroy').catch(() => undefined);
  await rm(home, { recursive: true, force: true });
}, 60_000);

describe('operator commands against real agents', () => {
  it('event reports the members it was queued to; query streams answers and ends once every member answered', async () => {
    const ev = await ok('event', 'count', '{"value":1}');
    expect(ev).toMatch(/^event count \(ltime \d+\) queued to 4 member\(s\)/);
    const started = Date.now();
    const q = await ok('query', 'ping', '--timeout', '20000');
    expect(Date.now() - started).toBeLessThan(10_000); // not the 20 s timeout
    const lines = q.trimEnd().split('\n');
    expect(lines.filter((l) => l.startsWith('ack from '))).toHaveLength(4);
    expect(lines.filter((l) => /^response from [\w-]+\/\d \(\d+(\.\d+)? m?s\): \{"unit"/.test(l))).toHaveLength(4);
    expect(lines.at(-1)).toMatch(/^total: 4 ack\(s\), 4 response\(s\) of 4 member\(s\); every member answered in /);
    const json = JSON.parse(await ok('query', 'ping', '--json')) as { responses: { from: string }[]; members: number; complete: boolean };
    expect(json.responses.map((r) => r.from).sort()).toEqual(['faulty/0', 'receiver/0', 'receiver/1', 'sender/0']);
    expect(json).toMatchObject({ members: 4, complete: true });
    const bad = await rhizome('query', 'rz.secret');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/query name "rz\.secret" must be/);
  }, 60_000);

  it('logs: merged by time across units, include/exclude, level, exec output under its run', async () => {
    await ok('event', 'shell');
    const runId = await until('the shell step in faulty/0 log', async () => {
      const lines = (await ok('logs', '--include', 'faulty', '--json', '--replay')).trim().split('\n').map((l) => JSON.parse(l) as LogRecord);
      return lines.find((r) => r.step === 'exec' && r.stdout === 'hello from the step\n')?.runId;
    });
    const story = await ok('logs', '--run', runId, '-i', 'faulty/0');
    expect(story).toMatch(/exec sh: exit 0 .*exitCode=0 duration=\d+(\.\d)? ms\n {4}\| hello from the step\n {4}! careful/);
    expect(story).toMatch(/run committed: user\.shell/);

    const merged = (await ok('logs', '-n', '20', '--json')).trim().split('\n').map((l) => JSON.parse(l) as LogRecord);
    expect(merged.length).toBe(20);
    expect(new Set(merged.map((r) => r.unit)).size).toBeGreaterThanOrEqual(3);
    expect(merged.map((r) => r.time)).toEqual([...merged.map((r) => r.time)].sort((a, b) => a - b));
    // Through one agent (as on a machine that holds no deployment record): every unit of its mesh too.
    const dataDir = (await readDeployment(home)).units['sender/0']!.dataDir;
    const viaOne = (await ok('--data-dir', dataDir, 'logs', '-n', '40', '--json')).trim().split('\n').map((l) => JSON.parse(l) as LogRecord);
    expect(new Set(viaOne.map((r) => r.unit)).size).toBeGreaterThanOrEqual(3);
    const text = await ok('logs', '-n', '30', '-x', 'receiver', '-x', 'faulty/0');
    const unitsShown = new Set(text.split('\n').filter((l) => /^\d\d:/.test(l)).map((l) => l.split(/\s+/)[2]));
    expect([...unitsShown]).toEqual(['sender/0']);
    const warn = (await ok('logs', '--level', 'warn', '--replay', '--json')).trim();
    for (const l of warn === '' ? [] : warn.split('\n')) expect((JSON.parse(l) as LogRecord).level).toBeGreaterThanOrEqual(40);
    const unknown = await rhizome('logs', '--include', 'nosuch');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no service or unit "nosuch".*its units are faulty\/0, receiver\/0/);

    // --follow, as a real process: a new event's lines arrive, SIGINT ends it cleanly
    const child = spawn(process.execPath, rhizomeCommand(['--home', home, 'logs', '-f', '-n', '0', '-i', 'sender']).args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await until('the follower started', async () => (await ok('event', 'count', '{"value":7}')) && /user\.count/.test(out), { timeoutMs: 30_000, intervalMs: 1_000 });
      expect(out).toMatch(/sender\/0 \[sender\/0-\d+\] run committed: user\.count/);
      expect(new Set(out.split('\n').filter((l) => /^\d\d:/.test(l)).map((l) => l.split(/\s+/)[2]))).toEqual(new Set(['sender/0']));
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  }, 90_000);

  it('status: sections, selectors, --state, plain rows, JSON errors, --watch, a killed unit', async () => {
    const all = await ok('status');
    expect(all).toMatch(/^Deployment +Members +Time\ncluster +4\/4 /);
    expect(all).toMatch(/^receiver +counter-receiver +\w+ +2\/2 /m);
    expect(all).toMatch(/^receiver\/0\* +idle +\w+ +127\.0\.0\.1 +\d+,\d+ +local /m);
    expect(all).toMatch(/^receiver\/1 +idle /m);
    expect(all).toMatch(/^sender:feed +receiver:feed +counter +regular +joined/m);

    const one = await ok('status', 'receiver/1', '--format', 'plain');
    expect(one.split('\n').filter((l) => UNIT_ROW.test(l)).map((l) => l.split(/\s+/)[0])).toEqual(['receiver/1']);

    const json = JSON.parse(await ok('status', 'sender', '--json')) as StatusSummary;
    expect(json.units.map((u) => u.unit)).toEqual(['sender/0']);
    expect(json.units[0]!.status?.relations.length).toBeGreaterThan(0);

    const unknown = await rhizome('status', 'nosuch', '--format', 'json');
    expect(unknown.code).toBe(1);
    expect(JSON.parse(unknown.stdout)).toEqual({ error: { code: 'AGENT_ERR_UNKNOWN_UNIT', message: expect.stringMatching(/no service or unit "nosuch".*known: faulty, receiver, sender/) } });
    const badFormat = await rhizome('status', '--format', 'xml');
    expect(badFormat.code).toBe(2);
    expect(badFormat.stderr).toMatch(/option '--format <format>' argument 'xml' is invalid\. takes one of table, plain, json, yaml/);

    // a handler in error: `error` in the workload column, the unit alone under --state error
    await ok('event', 'explode');
    const errored = await until('faulty/0 in error', async () => {
      const out = await ok('status', '--state', 'error', '--format', 'plain');
      return /^faulty\/0\* +error +error /m.test(out) ? out : undefined;
    });
    expect(errored.split('\n').filter((l) => UNIT_ROW.test(l))).toHaveLength(1);
    expect(errored).toMatch(/faulty\/0: error in handler explode on user\.explode/);
    await ok('resolve', 'faulty/0', '--skip');

    // --watch: bounded by --count; a frame per change when not on a TTY
    const watched = await ok('status', 'faulty', '--watch', '0.2', '--count', '2');
    expect(watched.match(/^Deployment/gm)?.length ?? 0).toBeGreaterThanOrEqual(1);
    expect((await rhizome('status', '--watch', '0')).stderr).toMatch(/argument '0' is invalid\. takes seconds between redraws/);

    // a killed unit reads down, and its service counts it out
    await ok('kill', 'receiver/1');
    const down = await ok('status', 'receiver', '--format', 'plain');
    expect(down).toMatch(/^receiver\/1 +down /m);
    expect(down).toMatch(/^receiver +counter-receiver +down +1\/2 /m);
  }, 90_000);

  it('add-unit -n and scale: grow at once, shrink down units first then the highest, refuse bad counts', async () => {
    // receiver/1 was killed above: receiver has 0 (up) and 1 (down)
    const added = await ok('add-unit', 'receiver', '-n', '2', '--timeout', '90');
    expect(added).toMatch(/^receiver\/2, receiver\/3 added/);
    const scaled = await ok('scale', 'receiver', '2', '--timeout', '90');
    expect(scaled).toMatch(/^scaled receiver from 4 to 2 unit\(s\): removed receiver\/1, receiver\/3/);
    const st = JSON.parse(await ok('status', 'receiver', '--json')) as StatusSummary;
    expect(st.units.map((u) => [u.unit, u.up])).toEqual([['receiver/0', true], ['receiver/2', true]]);
    const sender = JSON.parse(await ok('status', 'sender', '--json')) as StatusSummary;
    const feed = sender.units[0]!.status!.relations.find((r) => r.remoteService === 'receiver')!;
    expect(feed.units.map((u) => u.unit)).toEqual(['receiver/0', 'receiver/2']);
    expect(await ok('scale', 'receiver', '2')).toMatch(/receiver already has 2 unit\(s\)/);

    const nosuch = await rhizome('scale', 'nosuch', '2');
    expect(nosuch.code).toBe(1);
    expect(nosuch.stderr).toMatch(/has no service "nosuch"; its services are faulty, receiver, sender/);
    // bad counts are bad usage (exit 2): the table in cli.test.ts
  }, 120_000);

  it('config: shows options, changes every unit once through a rebuilt charm, refuses bad keys and values, survives a restart', async () => {
    const facts = async (): Promise<Record<string, unknown>> => JSON.parse(await ok('facts', 'faulty/0', '--json')) as Record<string, unknown>;
    const shown = await ok('config', 'faulty');
    expect(shown).toMatch(/greeting +│ string +│ hello +│ hello +│ what on-config records/);
    expect(shown).toMatch(/retries +│ number +│ 3 +│ 3 /);
    const before = await facts();
    expect(before['greeting']).toBe('hello x3');
    const changes = before['config.changes'] as number;

    const out = await ok('config', 'faulty', 'greeting=hi', 'retries=5', '--timeout', '60');
    expect(out).toMatch(/^faulty: greeting=hi retries=5 on faulty\/0 \(converged in /);
    const after = await facts();
    expect(after['greeting']).toBe('hi x5'); // the handler saw the new config through unit.config
    expect(after['config.changes']).toBe(changes + 1); // config.changed ran once
    expect(await ok('config', 'faulty')).toMatch(/greeting +│ string +│ hello +│ hi \* /);
    expect(await ok('config', 'faulty', 'greeting=hi')).toMatch(/nothing to change/);

    for (const [args, message] of [
      [['config', 'faulty', 'nope=1'], /unknown option "nope"; this charm's options are greeting, retries/],
      [['config', 'faulty', 'retries=99'], /invalid config: retries: .*10/],
      [['config', 'faulty', 'retries=many'], /option "retries" takes a number/],
      [['config', 'faulty', 'greeting='], /invalid config: greeting: /],
      [['config', 'nosuch', 'a=1'], /no service "nosuch"; the services are faulty, receiver, sender/],
    ] as const) {
      const r = await rhizome(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(message);
    }
    expect(await facts()).toMatchObject({ greeting: 'hi x5', 'config.changes': changes + 1 }); // nothing was applied

    // the change survives a crash and restart, and does not run config.changed again
    await ok('kill', 'faulty/0');
    await ok('start', 'faulty/0', '--timeout', '90');
    await until('faulty/0 idle after restart', async () => JSON.parse(await ok('status', 'faulty', '--json')).units[0].agent === 'idle');
    expect(await facts()).toMatchObject({ greeting: 'hi x5', 'config.changes': changes + 1 });
    expect(await ok('config', 'faulty')).toMatch(/retries +│ number +│ 3 +│ 5 \* /);

    // a unit already in error: the change waits behind its failed run, and resolve lets it through
    await ok('event', 'explode');
    await until('faulty/0 in error', async () => JSON.parse(await ok('status', 'faulty', '--json')).units[0].agent === 'error');
    const queued = await rhizome('config', 'faulty', 'retries=4', '--timeout', '30');
    expect(queued.code).toBe(1);
    expect(queued.stderr).toMatch(/faulty\/0 was already in error \(.*\); the new config waits behind that failed run: 'rhizome resolve faulty\/0' retries it/);
    await ok('resolve', 'faulty/0', '--skip');
    await until('retries=4 applied', async () => ((await facts())['greeting'] === 'hi x4' ? true : undefined));
  }, 120_000);

  it('actions: run on a unit or a service, results and errors per unit, params checked, failures roll back without error state', async () => {
    expect(await ok('actions', 'faulty')).toMatch(/greet +│ greets someone/);
    const one = await ok('run', 'faulty/0', 'greet', 'name=ada', 'times=2');
    expect(one).toMatch(/^faulty\/0: greet completed in \d+(\.\d+)? m?s \(run (faulty\/0-\d+)\)\n {2}greeting: (\w+) ada, \3 ada/);
    const runId = /\(run (faulty\/0-\d+)\)/.exec(one)![1]!;
    const facts = JSON.parse(await ok('facts', 'faulty/0', '--json')) as Record<string, unknown>;
    expect(facts['last.greeted']).toBe('ada');
    // in the unit's runs and logs like any run
    const runs = JSON.parse(await ok('runs', 'faulty/0', '--json')) as { runId: string; eventLabel: string; outcome: string }[];
    expect(runs.find((r) => r.runId === runId)).toMatchObject({ eventLabel: 'action.greet', outcome: 'committed' });
    expect(await ok('logs', '--run', runId, '-i', 'faulty/0')).toMatch(/run committed: action\.greet/);

    // a service: every live unit answers
    const svc = await rhizome('run', 'receiver', 'nope', '--json');
    expect(svc.code).toBe(1);
    const [answers, error] = svc.stdout.trim().split(/\n(?=\{"error")/);
    const json = JSON.parse(answers!) as { unit: string; ok: boolean; error?: string }[];
    const live = (JSON.parse(await ok('status', 'receiver', '--json')) as StatusSummary).units.filter((u) => u.up).map((u) => u.unit);
    expect(json.map((a) => [a.unit, a.ok])).toEqual(live.map((u) => [u, false]));
    expect(JSON.parse(error!)).toMatchObject({ error: { code: 'AGENT_ERR_ACTION' } });
    expect(json[0]!.error).toMatch(/no action "nope"; this charm's actions are \(none\)/);

    // params failing the schema: refused, nothing runs
    const bad = await rhizome('run', 'faulty/0', 'greet', 'times=9');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/faulty\/0: greet failed: invalid parameters for action "greet": name: .*; times: .*5/);
    const malformed = await rhizome('run', 'faulty/0', 'greet', 'ada');
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/"ada" is not parameter=value/);

    // a failing action: the run rolls back, the unit stays idle (no retries, no error state)
    const failed = await rhizome('run', 'faulty', 'half-fail');
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/faulty\/0: half-fail failed: .*the second half failed/);
    const after = JSON.parse(await ok('facts', 'faulty/0', '--json')) as Record<string, unknown>;
    expect(after['half.done']).toBeUndefined();
    const st = JSON.parse(await ok('status', 'faulty', '--json')) as StatusSummary;
    expect(st.units[0]).toMatchObject({ agent: 'idle' });
  }, 60_000);

  it('run --timeout: names the units that did not answer in time; their action still commits', async () => {
    const started = Date.now();
    const late = await rhizome('run', 'faulty/0', 'slow', 'ms=4000', '--timeout', '0.5', '--json');
    expect(Date.now() - started).toBeLessThan(3_900); // it did not wait for the action
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(/error: slow: no answer within 0\.5 s from faulty\/0; the action may still commit there \('rhizome runs faulty\/0' shows whether it did; --timeout S waits longer\)/);
    const [answers, error] = late.stdout.trim().split(/\n(?=\{"error")/);
    expect(JSON.parse(answers!)).toEqual([expect.objectContaining({ unit: 'faulty/0', ok: false, timedOut: true })]);
    expect(JSON.parse(error!)).toMatchObject({ error: { code: 'AGENT_ERR_ACTION_TIMEOUT' } });
    await until('the late action committed', async () => {
      const runs = JSON.parse(await ok('runs', 'faulty/0', '--json')) as { eventLabel: string; outcome: string }[];
      return runs.some((r) => r.eventLabel === 'action.slow' && r.outcome === 'committed');
    });
    expect((JSON.parse(await ok('facts', 'faulty/0', '--json')) as Record<string, unknown>)['slow.waited']).toBe(4000);
    // As a process: it exits at the timeout, not when the unit finally answers.
    const t0 = Date.now();
    const proc = spawn(process.execPath, rhizomeCommand(['--home', home, 'run', 'faulty/0', 'slow', 'ms=5000', '--timeout', '0.5']).args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let perr = '';
    proc.stderr.on('data', (d: Buffer) => (perr += d.toString()));
    const code = await new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
    expect([code, Date.now() - t0 < 4_000]).toEqual([1, true]);
    expect(perr).toMatch(/no answer within 0\.5 s from faulty\/0/);
    // Long enough: the result, as without --timeout.
    expect(await ok('run', 'faulty/0', 'slow', 'ms=200', '--timeout', '30')).toMatch(/^faulty\/0: slow completed in .*\n {2}waited: 200/);
    for (const bad of ['0', 'soon', '3601']) {
      const r = await rhizome('run', 'faulty/0', 'slow', 'ms=1', '--timeout', bad);
      expect(r.code, bad).toBe(2);
      expect(r.stderr).toMatch(/--timeout <seconds>' argument .* takes seconds in \(0, 3600\]/);
    }
  }, 60_000);

  it('run --background: returns once started (parameters checked first); the result is logged under its run, also over the mesh', async () => {
    const started = Date.now();
    const out = await ok('run', 'faulty/0', 'slow', 'ms=1500', '--background');
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(out).toBe("faulty/0: slow started in the background ('rhizome logs -i faulty/0' shows its result)\n");
    const logged = await until('the background result in the log', async () => {
      const lines = (await ok('logs', '-i', 'faulty/0', '--replay', '--json')).trim().split('\n').map((l) => JSON.parse(l) as LogRecord & { result?: unknown });
      return lines.find((r) => r.msg === 'action slow completed (background)');
    });
    expect(logged).toMatchObject({ result: { waited: 1500 }, runId: expect.stringMatching(/^faulty\/0-\d+/) });
    const runs = JSON.parse(await ok('runs', 'faulty/0', '--json')) as { runId: string; outcome: string }[];
    expect(runs.find((r) => r.runId === logged.runId)).toMatchObject({ outcome: 'committed' });
    // Bad parameters are still refused, before anything starts.
    const bad = await rhizome('run', 'faulty/0', 'slow', 'ms=99999', '--background');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/faulty\/0: slow failed: invalid parameters for action "slow": ms: /);
    // Through another unit's agent, over the mesh.
    const via = (await readDeployment(home, 'cluster')).units['receiver/0']!.dataDir;
    expect(await ok('--data-dir', via, 'run', 'faulty/0', 'slow', 'ms=5', '--background')).toMatch(/^faulty\/0: slow started in the background/);
    await until('the mesh-started action logged', async () => (await ok('logs', '-i', 'faulty/0', '--replay')).match(/action slow completed \(background\)/g)?.length === 2);
  }, 60_000);

  it('upgrade-charm: rolls a new charm out keeping state; refuses one whose interfaces break a relation, changing nothing', async () => {
    const fixtures = join(import.meta.dirname, '../fixtures/charms');
    const factsOf = async (u: string): Promise<Record<string, unknown>> => JSON.parse(await ok('facts', u, '--json')) as Record<string, unknown>;
    await ok('run', 'faulty/0', 'greet', 'name=grace');
    const out = await ok('upgrade-charm', 'faulty', '--path', join(fixtures, 'faulty-v2'), '--timeout', '90');
    expect(out).toMatch(/^faulty\/0: upgraded and converged in /m);
    const after = await factsOf('faulty/0');
    expect(after['version']).toBe(2); // the new charm's handler ran
    expect(after['last.greeted']).toBe('grace'); // state kept across the upgrade

    const pidBefore = (JSON.parse(await ok('status', 'receiver', '--json')) as StatusSummary).units.find((u) => u.up)!.status!.pid;
    const refused = await rhizome('upgrade-charm', 'receiver', '--path', join(fixtures, 'receiver-http'));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/upgrade of receiver refused.*receiver:feed is related to sender:feed on interface "counter" \(requires\), but the new charm's "feed" is "http" \(requires\)/);
    const pidAfter = (JSON.parse(await ok('status', 'receiver', '--json')) as StatusSummary).units.find((u) => u.up)!.status!.pid;
    expect(pidAfter).toBe(pidBefore); // nothing was stopped
    expect((await rhizome('upgrade-charm', 'nosuch')).stderr).toMatch(/has no service "nosuch"/);

    // A new charm the agent refuses at start: the roll-out stops, and the unit runs its old charm again.
    const bad = await rhizome('upgrade-charm', 'faulty', '--path', join(fixtures, 'declared-typo'), '--timeout', '60');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/upgrade of faulty stopped at faulty\/0: its agent did not start on the new charm .*declared-typo:/);
    expect(bad.stderr).toMatch(/kafka\.instaled/);
    expect(bad.stderr).toMatch(/faulty\/0 runs again on .*faulty-v2/);
    expect((await factsOf('faulty/0'))['last.greeted']).toBe('grace');
    expect((JSON.parse(await ok('status', 'faulty/0', '--json')) as StatusSummary).units[0]!.up).toBe(true);
  }, 120_000);
});
