/**
 * runAnsiblePlaybook: the `ansible` executor.
 *
 * Runs the real `ansible-playbook` against this machine only
 * (`-i localhost, -c local`), the way charm-helpers ran playbooks from Juju
 * hooks: the handler's view of the world goes in as extra vars from a JSON
 * file (`-e @vars.json`, mode 0600) with the charm-helpers names
 * (`config`, `unit_name`, `service_name`, `addresses`, `relations`, `facts`),
 * and what the playbook reports with
 *
 *     - ansible.builtin.set_stats:
 *         data: { url: "http://{{ addresses[0] }}:{{ config.port }}" }
 *         aggregate: false
 *
 * comes back as facts. The results are read through the agent's own JSON
 * stdout callback (see `ansible-callback.ts`: ansible-core has none), with
 * ANSIBLE_SHOW_CUSTOM_STATS=1.
 *
 * Failures are typed: `AGENT_ERR_ANSIBLE_MISSING` (not installed: how to
 * install it), `AGENT_ERR_ANSIBLE_FAILED` (`AnsibleError` with the failed
 * tasks, their hosts and messages; or ansible's own ERROR! line for a playbook
 * that does not parse), `AGENT_ERR_EXEC_TIMEOUT`, `AGENT_ERR_ANSIBLE_OUTPUT`
 * (no readable result document).
 */
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AgentError, ANSIBLE_OUTPUT_TAIL, AnsibleError, ExecError } from '../errors';
import type { AnsibleTaskFailure } from '../errors';
import { CALLBACK_NAME, CALLBACK_SOURCE, RESULT_ENV } from './ansible-callback';
import { DEFAULT_RUN_COMMAND_OPTIONS, runCommand, tail } from './run-command';
import { which } from './which';

/** Extra vars as charm-helpers passed them; any other JSON keys may be added. */
export interface AnsibleExtraVars {
  config?: Record<string, unknown>;
  unit_name?: string;
  service_name?: string;
  addresses?: string[];
  relations?: Record<string, unknown>;
  facts?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface AnsiblePlaybookOptions {
  /** Path of the playbook (relative to `cwd` if given). */
  playbook: string;
  extraVars?: AnsibleExtraVars;
  timeoutMs?: number;
  /** Stops the playbook (its process group) when it aborts: pass the handler's `ctx.signal`. */
  signal?: AbortSignal;
  cwd?: string;
  /** Extra environment for ansible-playbook. */
  env?: Readonly<Record<string, string>>;
  /** The ansible-playbook program; default `ansible-playbook` on PATH. */
  ansiblePlaybook?: string;
  /** Render templates to native types (ANSIBLE_JINJA2_NATIVE), so `"{{ port }}"` stays a number. Default false (Ansible's default: strings). */
  jinja2Native?: boolean;
}

export const DEFAULT_ANSIBLE_OPTIONS = Object.freeze({
  /** Playbooks install packages; same bound as any command. */
  timeoutMs: DEFAULT_RUN_COMMAND_OPTIONS.timeoutMs,
  ansiblePlaybook: 'ansible-playbook',
  /** Ansible's own default, so existing playbooks behave as they always did. */
  jinja2Native: false,
});

export interface AnsibleHostStats {
  ok: number;
  changed: number;
  failures: number;
  unreachable: number;
  skipped: number;
  rescued: number;
  ignored: number;
}

export interface AnsibleResult {
  /** `set_stats` data: run-wide stats, overlaid with those set `per_host` for localhost. */
  facts: Record<string, unknown>;
  /** Whether any task changed something. */
  changed: boolean;
  /** Failures that did not fail the play (rescued); ignored failures are not listed. */
  failedTasks: AnsibleTaskFailure[];
  /** One line per task result, for the run report. */
  stdout: string;
  stats: Record<string, AnsibleHostStats>;
  durationMs: number;
}

/** What the callback's JSON document holds, after checking. */
export interface AnsibleReport {
  tasks: { name: string; host: string; result: Record<string, unknown> }[];
  stats: Record<string, AnsibleHostStats>;
  customStats: Record<string, Record<string, unknown>>;
  globalCustomStats: Record<string, unknown>;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/**
 * Parses the JSON document of the callback (or of ansible.posix.json, which
 * has the same shape). Throws `AGENT_ERR_ANSIBLE_OUTPUT` if it is not one.
 */
export function parseAnsibleReport(value: unknown): AnsibleReport {
  const bad = (what: string): never => {
    throw new AgentError('AGENT_ERR_ANSIBLE_OUTPUT', `unexpected ansible-playbook result document: ${what}`);
  };
  if (!isObject(value)) return bad('not an object');
  const { plays, stats, custom_stats: custom, global_custom_stats: global } = value;
  if (!Array.isArray(plays)) return bad('`plays` is not a list');
  if (!isObject(stats)) return bad('`stats` is not an object');
  const tasks: AnsibleReport['tasks'] = [];
  for (const play of plays) {
    if (!isObject(play) || !Array.isArray(play['tasks'])) return bad('a play without `tasks`');
    for (const entry of play['tasks']) {
      if (!isObject(entry) || !isObject(entry['task']) || !isObject(entry['hosts'])) return bad('a malformed task');
      const name = typeof entry['task']['name'] === 'string' ? entry['task']['name'] : '(unnamed task)';
      for (const [host, result] of Object.entries(entry['hosts'])) {
        if (isObject(result)) tasks.push({ name, host, result });
      }
    }
  }
  const hostStats: Record<string, AnsibleHostStats> = {};
  for (const [host, s] of Object.entries(stats)) {
    if (!isObject(s)) return bad(`stats of ${host} are not an object`);
    hostStats[host] = {
      ok: count(s['ok']),
      changed: count(s['changed']),
      failures: count(s['failures']),
      unreachable: count(s['unreachable']),
      skipped: count(s['skipped']),
      rescued: count(s['rescued']),
      ignored: count(s['ignored']),
    };
  }
  const customStats: Record<string, Record<string, unknown>> = {};
  if (isObject(custom)) for (const [host, data] of Object.entries(custom)) if (isObject(data)) customStats[host] = data;
  return { tasks, stats: hostStats, customStats, globalCustomStats: isObject(global) ? global : {} };
}

/** The last `max` characters of a task's output field, trimmed; undefined when empty. */
function outputTail(v: unknown, max = ANSIBLE_OUTPUT_TAIL): string | undefined {
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  if (t === '') return undefined;
  return t.length > max ? `...${t.slice(-max)}` : t;
}

/**
 * What a failed task says, with the evidence: `msg` alone is often just
 * "non-zero return code", while the reason (nginx's "bind() to
 * 127.0.0.1:18480 failed (98: Address already in use)") is in the task's
 * stderr, or its stdout. For a loop, the first failed item speaks.
 */
function failureOf(task: string, host: string, result: Record<string, unknown>): AnsibleTaskFailure {
  const items = Array.isArray(result['results']) ? result['results'].filter(isObject) : [];
  const item = items.find((r) => r['failed'] === true) ?? result;
  const raw = item['msg'] ?? result['msg'] ?? result['reason'];
  const base = typeof raw === 'string' && raw !== '' ? raw : raw === undefined ? '' : JSON.stringify(raw);
  const stderr = outputTail(item['stderr']);
  const stdout = outputTail(item['stdout']);
  const rc = typeof item['rc'] === 'number' ? item['rc'] : undefined;
  const evidence = stderr ?? stdout;
  const parts = [base.slice(0, ANSIBLE_OUTPUT_TAIL)];
  if (rc !== undefined && !base.includes(`${rc}`)) parts.push(`(rc ${rc})`);
  if (evidence !== undefined && !base.includes(evidence)) parts.push(`${stderr !== undefined ? 'stderr' : 'stdout'}: ${evidence}`);
  const msg = parts.filter((p) => p !== '').join(' ') || 'no message';
  return {
    task,
    host,
    msg,
    ...(rc !== undefined ? { rc } : {}),
    ...(stderr !== undefined ? { stderr } : {}),
    ...(stdout !== undefined ? { stdout } : {}),
  };
}

/** The failed (not ignored) and unreachable task results of a report. */
export function failedTasksOf(report: AnsibleReport): AnsibleTaskFailure[] {
  return report.tasks
    .filter(({ result }) => (result['failed'] === true && result['rhizome_ignored'] !== true) || result['unreachable'] === true)
    .map(({ name, host, result }) => failureOf(name, host, result));
}

/** Lines such as "ERROR! the playbook: x could not be found" from stderr. */
function ansibleErrorLine(stderr: string): string | undefined {
  const lines = stderr.split('\n');
  const i = lines.findIndex((l) => l.startsWith('ERROR!'));
  return i < 0 ? undefined : lines.slice(i, i + 3).join(' ').trim();
}

/** Runs a playbook against localhost; resolves with its reported facts, throws typed errors on failure. */
export async function runAnsiblePlaybook(opts: AnsiblePlaybookOptions): Promise<AnsibleResult> {
  const program = opts.ansiblePlaybook ?? DEFAULT_ANSIBLE_OPTIONS.ansiblePlaybook;
  const found = await which(program, opts.env?.['PATH'] ?? process.env['PATH']);
  if (found === undefined) {
    throw new ExecError(
      'AGENT_ERR_ANSIBLE_MISSING',
      `'${program}' is not installed (not found on PATH). Install it with ` +
        `'apt-get install ansible-core', or run 'scripts/ensure-apt.sh ansible-core'.`,
      { command: program, exitCode: null, signal: null, stderrTail: '' },
    );
  }
  const playbook = resolve(opts.cwd ?? process.cwd(), opts.playbook);
  try {
    await access(playbook);
  } catch {
    throw new AgentError(
      'AGENT_ERR_EXEC_BAD_OPTIONS',
      `playbook ${playbook} does not exist; check the path the charm gives (relative paths are resolved from cwd).`,
    );
  }

  const work = await mkdtemp(join(tmpdir(), 'rhizome-ansible-'));
  try {
    const varsFile = join(work, 'vars.json');
    const resultFile = join(work, 'result.json');
    const pluginDir = join(work, 'callback_plugins');
    await writeFile(varsFile, JSON.stringify(opts.extraVars ?? {}), { mode: 0o600 });
    await mkdir(pluginDir);
    await writeFile(join(pluginDir, `${CALLBACK_NAME}.py`), CALLBACK_SOURCE);
    const env: Record<string, string> = {
      ...opts.env,
      ANSIBLE_CALLBACK_PLUGINS: pluginDir,
      ANSIBLE_STDOUT_CALLBACK: CALLBACK_NAME,
      ANSIBLE_SHOW_CUSTOM_STATS: '1',
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_FORCE_COLOR: '0',
      ANSIBLE_RETRY_FILES_ENABLED: '0',
      ANSIBLE_LOCALHOST_WARNING: '0',
      ANSIBLE_INVENTORY_UNPARSED_WARNING: '0',
      ANSIBLE_PYTHON_INTERPRETER: 'auto_silent',
      // Ansible's scratch files go with the run's temp dir, not ~/.ansible/tmp.
      ANSIBLE_LOCAL_TEMP: join(work, 'tmp'),
      ANSIBLE_REMOTE_TEMP: join(work, 'tmp'),
      ANSIBLE_JINJA2_NATIVE: (opts.jinja2Native ?? DEFAULT_ANSIBLE_OPTIONS.jinja2Native) ? '1' : '0',
      [RESULT_ENV]: resultFile,
    };
    const args = ['-i', 'localhost,', '-c', 'local', '-e', `@${varsFile}`, playbook];
    const readReport = async (): Promise<AnsibleReport | undefined> => {
      let text: string;
      try {
        text = await readFile(resultFile, 'utf8');
      } catch {
        return undefined;
      }
      try {
        return parseAnsibleReport(JSON.parse(text));
      } catch (err) {
        if (err instanceof AgentError) throw err;
        throw new AgentError('AGENT_ERR_ANSIBLE_OUTPUT', `ansible-playbook result is not JSON: ${String(err)}`, {
          cause: err,
        });
      }
    };

    let result;
    try {
      result = await runCommand({
        command: found,
        args,
        env,
        timeoutMs: opts.timeoutMs ?? DEFAULT_ANSIBLE_OPTIONS.timeoutMs,
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
        ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
      });
    } catch (err) {
      if (!(err instanceof ExecError) || err.code !== 'AGENT_ERR_EXEC_FAILED') throw err;
      const report = await readReport().catch(() => undefined);
      const failedTasks = report === undefined ? [] : failedTasksOf(report);
      const details = {
        command: found,
        exitCode: err.exitCode,
        signal: err.signal,
        stderrTail: err.stderrTail,
        failedTasks,
      };
      const first = failedTasks[0];
      const reason =
        first !== undefined
          ? `task '${first.task}' failed on ${first.host}: ${first.msg}` +
            (failedTasks.length > 1 ? ` (and ${failedTasks.length - 1} more failed task(s))` : '')
          : (ansibleErrorLine(err.stderrTail) ?? `exit code ${err.exitCode ?? err.signal}: ${tail(err.stderrTail, 300)}`);
      throw new AnsibleError(`playbook ${playbook} failed: ${reason}`, details, { cause: err });
    }

    const report = await readReport();
    if (report === undefined) {
      throw new AgentError(
        'AGENT_ERR_ANSIBLE_OUTPUT',
        `ansible-playbook exited 0 but wrote no result document; is ANSIBLE_STDOUT_CALLBACK overridden by the playbook's ansible.cfg?`,
      );
    }
    const facts = { ...report.globalCustomStats, ...(report.customStats['localhost'] ?? {}) };
    return {
      facts,
      changed: Object.values(report.stats).some((s) => s.changed > 0),
      failedTasks: failedTasksOf(report),
      stdout: result.stdout,
      stats: report.stats,
      durationMs: result.durationMs,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
