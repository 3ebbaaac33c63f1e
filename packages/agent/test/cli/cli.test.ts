import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { QUICK_COMMANDS } from '../../src/cli/command-line';
import { QUICK_MODULES } from '../../src/cli/quick';
import { agentPackageRoot, rhizomeCommand } from '../../src/runtime';
import { rhizomeIn, type CliResult } from './harness';

const BIN = join(import.meta.dirname, '../../bin/rhizome.cjs');
let home = '';

/** Runs the CLI in this process, capturing its output. */
const rhizome = (...args: string[]): Promise<CliResult> => rhizomeIn(home, ...args);

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'rz-cli-'));
});
afterEach(() => vi.restoreAllMocks());
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('rhizome CLI arguments and errors', () => {
  it('runs as a real process: version through bin/rhizome.cjs, exit 2 for a bad command, exit 1 for a runtime error', () => {
    const b = spawnSync(process.execPath, [BIN, 'version'], { encoding: 'utf8', timeout: 60_000 });
    expect(b.status).toBe(0);
    expect(b.stdout).toMatch(/^rhizome \d+\.\d+\.\d+/);
    const bad = spawnSync(process.execPath, rhizomeCommand(['bogus']).args, { encoding: 'utf8', timeout: 60_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown command 'bogus'/);
    const none = spawnSync(process.execPath, rhizomeCommand(['--home', home, 'status']).args, { encoding: 'utf8', timeout: 60_000 });
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/^error: no deployment found in /);
  });

  it('knows the same quick commands in the launcher and in the quick CLI', () => {
    expect([...QUICK_COMMANDS].sort()).toEqual([...Object.keys(QUICK_MODULES), 'version'].sort());
  });

  it('answers a quick command (status, members, facts, runs, version) from the quick CLI exactly as the full one does', () => {
    // rhizomeCommand runs the launcher (dist/rhizome.cjs: quick commands in dist/quick.cjs); dist/bin.js is the full CLI.
    const full = (args: string[]) => spawnSync(process.execPath, [join(agentPackageRoot(), 'dist/bin.js'), ...args], { encoding: 'utf8', timeout: 60_000 });
    const quick = (args: string[]) => spawnSync(process.execPath, rhizomeCommand(args).args, { encoding: 'utf8', timeout: 60_000 });
    for (const args of [
      ['status', '--help'],
      ['--home', home, 'status'],
      ['--home', home, '--json', 'status'],
      ['status', '--frobnicate'],
      ['status', '--format', 'xml'],
      ['members', '--help'],
      ['--home', home, 'members'],
      ['facts'],
      ['--home', home, '--json', 'facts', 'web/0'],
      ['runs', 'web/0', 'extra'],
      ['version'],
    ]) {
      const [q, f] = [quick(args), full(args)];
      expect({ args, status: q.status, stdout: q.stdout, stderr: q.stderr }).toEqual({ args, status: f.status, stdout: f.stdout, stderr: f.stderr });
    }
  });

  it.each([
    [['bogus'], /unknown command 'bogus'/, /usage: rhizome \[options\] <command>/],
    [['relate', 'a:b'], /missing required argument 'b'/, /usage: rhizome relate \[options\] <a> <b>/],
    [['facts'], /missing required argument 'unit'/, /usage: rhizome facts \[options\] <unit>/],
    [['status', '--frobnicate'], /unknown option '--frobnicate'/, /usage: rhizome status/],
    [['resolve', 'x/0', '--skp'], /unknown option '--skp'/, /usage: rhizome resolve \[options\] <unit>/],
  ])('exits 2 with the usage line for bad arguments: %j', async (args, message, usage) => {
    const r = await rhizome(...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(usage);
  });

  // Bad usage exits 2 everywhere, naming the bad value and what is allowed, before any agent
  // or deployment is looked for (this home has none: a good invocation gets as far as saying so, exit 1).
  it.each([
    [['scale', 'kv', '0'], /value '0' is invalid for argument 'n'\. takes a number of units from 1 to 64/, ['scale', 'kv', '2']],
    [['scale', 'kv', 'lots'], /value 'lots' is invalid .* takes a number of units from 1 to 64/, undefined],
    [['add-unit', 'kv', '-n', 'two'], /option '-n, --num-units <n>' argument 'two' is invalid\. takes a number of units from 1 to 64/, ['add-unit', 'kv', '-n', '2']],
    [['status', '--format', 'xml'], /option '--format <format>' argument 'xml' is invalid\. takes one of table, plain, json, yaml/, ['status', '--format', 'yaml']],
    [['status', '--watch', '0'], /argument '0' is invalid\. takes seconds between redraws, 0\.2 to 3600/, undefined],
    [['status', '--watch', '1', '--count', '1.5'], /argument '1\.5' is invalid\. takes a number of frames from 1/, undefined],
    [['wait', '--timeout', 'abc'], /option '--timeout <seconds>' argument 'abc' is invalid\. takes seconds in \(0, 86400\]/, ['wait', '--timeout', '5']],
    [['deploy', 'b.yaml', '--timeout', '-3'], /argument '-3' is invalid\. takes seconds/, undefined],
    [['deploy'], /deploy needs a BUNDLE file \(or --add SERVICE\)/, undefined],
    [['start', 'kv/0', '--log-level', 'loud'], /argument 'loud' is invalid\. takes one of fatal, error, warn, info, debug, trace, silent/, ['start', 'kv/0', '--log-level', 'debug']],
    [['upgrade-charm', 'kv', '--timeout', '0'], /argument '0' is invalid\. takes seconds/, undefined],
    [['config', 'kv', 'port'], /"port" is not option=value \(e\.g\. port=8080\)/, ['config', 'kv', 'port=1']],
    [['config', 'kv', 'a=1', 'a=2'], /option "a" is given twice/, undefined],
    [['config', 'kv', 'a=1', '--timeout', 'soon'], /argument 'soon' is invalid\. takes seconds/, undefined],
    [['run', 'kv', 'backup', 'nokey'], /"nokey" is not parameter=value/, ['run', 'kv', 'backup', 'to=/tmp']],
    [['run', 'kv/0', 'backup', '--timeout', '7200'], /argument '7200' is invalid\. takes seconds in \(0, 3600\]/, undefined],
    [['logs', '-n', 'many'], /argument 'many' is invalid\. takes a count of lines from 0/, ['logs', '-n', '10']],
    [['dashboard', '--port', '70000'], /argument '70000' is invalid\. takes a port number from 0/, undefined],
    [['dashboard', '--host', '0.0.0.0'], /argument '0\.0\.0\.0' is invalid\. takes one of 127\.0\.0\.1, ::1/, undefined],
    [['add-machine', 'ssh:root@', '--dir', '/x'], /value 'ssh:root@' is invalid .* is not an SSH destination/, undefined],
    [['add-machine', 'local', '--dir', 'relative'], /argument 'relative' is invalid\. takes an absolute path/, undefined],
    [['facts', 'kv'], /'kv' is not a unit name: a unit is SERVICE\/N, e\.g\. kv\/0/, ['facts', 'kv/0']],
    [['event', 'go', '{x'], /payload is not valid JSON/, ['event', 'go', '{"x":1}']],
    [['members', '--agent', 'http://127.0.0.1:1'], /--agent URL needs --token T/, undefined],
  ] as const)('bad usage exits 2 naming the value and what is allowed: %j', async (args, message, good) => {
    const r = await rhizome(...args);
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 2, stderr: expect.stringMatching(message) });
    expect(r.stderr).toMatch(/usage: rhizome /);
    if (good !== undefined) {
      const g = await rhizome(...good);
      expect(g.code, `${good.join(' ')}: ${g.stderr}`).toBe(1);
      expect(g.stderr).toMatch(/no deployment found|not found|ENOENT|no such file/i);
    }
  });

  it('--help lists every command, says which agent a command reaches and what the exit codes mean', async () => {
    const h = await rhizome('--help');
    expect(h.code).toBe(0);
    for (const c of ['deploy', 'status', 'run', 'dashboard', 'agent', 'logs', 'config', 'upgrade-charm', 'upgrade-model']) expect(h.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect(h.stdout).toMatch(/Which agent a command talks to: --agent URL --token T, else --data-dir DIR/);
    expect(h.stdout).toMatch(/Exit codes: 0 done, 1 runtime error .* 2 bad usage/);
    const run = await rhizome('run', '--help');
    expect(run.stdout).toMatch(/--timeout <seconds>.*\n.*--background/s);
  });

  it('exits 1 with a clear message when there is nothing to talk to', async () => {
    const r = await rhizome('status');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: no deployment found in .*; run 'rhizome deploy BUNDLE' first/);
    const d = await rhizome('members', '--data-dir', join(home, 'none'));
    expect(d.code).toBe(1);
    expect(d.stderr).toMatch(/no agent has served from data directory/);
    const u = await rhizome('status', '--agent', 'http://127.0.0.1:1', '--token', 'x');
    expect(u.code).toBe(1);
    expect(u.stderr).toMatch(/^error: /);
    const t = await rhizome('status', '--agent', 'http://127.0.0.1:1');
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/--agent URL needs --token/);
  });

  it('refuses an event or query payload that is not JSON (unless --raw) or too deep, before contacting any agent', async () => {
    for (const cmd of ['event', 'query']) {
      const bad = await rhizome(cmd, 'deploy', '{bad json');
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/payload is not valid JSON .*pass --raw to send the text as a string/);
      const deep = await rhizome(cmd, 'deploy', '['.repeat(100) + ']'.repeat(100));
      expect(deep.code).toBe(2);
      expect(deep.stderr).toMatch(/payload nests deeper than 28 levels/);
      // --raw takes any text: the command gets as far as looking for an agent.
      const raw = await rhizome(cmd, 'deploy', '{bad json', '--raw');
      expect(raw.code).toBe(1);
      expect(raw.stderr).toMatch(/no deployment found/);
    }
    // query --timeout: a duration (2s, 500ms; a bare number is ms), 10 ms to 60 s, else a usage error
    for (const bad of ['5x', '61s', '0', '-1s']) {
      const r = await rhizome('query', 'ping', '--timeout', bad);
      expect(r.code, bad).toBe(2);
      expect(r.stderr).toMatch(/--timeout <duration>' argument .* takes a duration from 10ms to 60s/);
    }
    for (const good of ['1.5s', '500ms', '3000']) expect((await rhizome('query', 'ping', '--timeout', good)).stderr, good).toMatch(/no deployment found/);
  });

  it('refuses a unit that is not SERVICE/N before contacting any agent, saying what a unit is', async () => {
    const r = await rhizome('runs', 'kv');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/'kv' is not a unit name: a unit is SERVICE\/N, e.g\. kv\/0 \('rhizome status' lists them\)/);
    expect((await rhizome('facts', 'Kv/x')).stderr).toMatch(/'Kv\/x' is not a unit name: a unit is SERVICE\/N \(/);
  });

  it('refuses a bad bundle with exit 1 and the path of the bad field', async () => {
    const r = await rhizome('deploy', join(import.meta.dirname, '../fixtures/bundles/bad-endpoint.yaml'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/relations\.0: charm "counter-receiver" has no endpoint "nope"/);
  });

  it('refuses a bad agent configuration as bad usage (exit 2)', async () => {
    const r = await rhizome('agent', '--unit', 'NotAUnit', '--charm', 'x', '--data-dir', join(home, 'a'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unit: a unit name looks like "service\/0"/);
    const p = await rhizome('agent', '--unit', 'web/0', '--charm', 'x', '--data-dir', join(home, 'a'), '--bind-port', 'http');
    expect(p.code).toBe(2);
    expect(p.stderr).toMatch(/--bind-port must be a port number/);
  });

  it('refuses bad --options-json, --snapshot-every and --dashboard values before starting anything', async () => {
    const args = ['agent', '--unit', 'web/0', '--charm', 'x', '--data-dir', join(home, 'a')];
    for (const [flag, value, message] of [
      ['--options-json', '{port: 1}', /--options-json is not JSON .*e\.g\. '\{"port": 8080\}'/],
      ['--options-json', '[1]', /--options-json must be a JSON object/],
      ['--snapshot-every', '0', /--snapshot-every must be a whole number of at least 1/],
      ['--dashboard', '10.0.0.5', /dashboard "10\.0\.0\.5" names no port/],
    ] as const) {
      const r = await rhizome(...args, flag, value);
      expect(r.code, `${flag} ${value}`).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  });
});
