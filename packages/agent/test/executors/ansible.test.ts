import { execFileSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANSIBLE_OUTPUT_TAIL, AnsibleError, ExecError } from '../../src/errors';
import { parseAnsibleReport, runAnsiblePlaybook } from '../../src/executors/ansible';
import { which } from '../../src/executors/which';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
let dir = '';

beforeAll(async () => {
  // The real ansible-playbook is required; install it the way the project does.
  if ((await which('ansible-playbook')) === undefined) {
    execFileSync(join(repoRoot, 'scripts/ensure-apt.sh'), ['ansible-core'], { stdio: 'inherit', timeout: 300_000 });
  }
  dir = await mkdtemp(join(tmpdir(), 'rhizome-ansible-test-'));
}, 320_000);
afterAll(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

async function playbook(name: string, yaml: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, yaml);
  return path;
}

const charmVars = {
  config: { port: 8080, motd: 'hello' },
  unit_name: 'web/0',
  service_name: 'web',
  addresses: ['127.0.0.1'],
  relations: { db: { 'pg/0': { host: '10.0.0.5', password: 's3cret' } } },
  facts: { role: 'primary' },
};

// Each case has playbooks and files of its own: they run at once, the
// ansible-playbook start-ups (seconds of Python each) and the hanging
// playbook's timeout overlapping. Assertions use each test's own expect.
describe.concurrent('runAnsiblePlaybook (real ansible-playbook)', () => {
  it('passes charm-helpers extra vars in and reads set_stats back as facts; reruns are idempotent', async ({ expect }) => {
    const out = join(dir, 'web.conf');
    const pb = await playbook(
      'configure.yml',
      `
- hosts: all
  gather_facts: false
  tasks:
    - name: write the config file
      ansible.builtin.copy:
        dest: ${out}
        content: "unit={{ unit_name }} service={{ service_name }} port={{ config.port }} db={{ relations.db['pg/0'].host }} role={{ facts.role }}\\n"
    - name: report results
      ansible.builtin.set_stats:
        data:
          url: "http://{{ addresses[0] }}:{{ config.port }}"
          db_host: "{{ relations.db['pg/0'].host }}"
        aggregate: false
`,
    );
    const first = await runAnsiblePlaybook({ playbook: pb, extraVars: charmVars, timeoutMs: 120_000 });
    expect(await readFile(out, 'utf8')).toBe('unit=web/0 service=web port=8080 db=10.0.0.5 role=primary\n');
    expect(first.facts).toEqual({ url: 'http://127.0.0.1:8080', db_host: '10.0.0.5' });
    expect(first.changed).toBe(true);
    expect(first.failedTasks).toEqual([]);
    expect(first.stats['localhost']).toMatchObject({ changed: 1, failures: 0 });
    expect(first.stdout).toContain('changed: [localhost] write the config file');

    const second = await runAnsiblePlaybook({ playbook: pb, extraVars: charmVars, timeoutMs: 120_000 });
    expect(second.changed).toBe(false);
    expect(second.facts).toEqual(first.facts);
  });

  it('merges per-host stats and can keep native types', async ({ expect }) => {
    const pb = await playbook(
      'stats.yml',
      `
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.set_stats:
        data: { port: "{{ config.port }}", who: run }
        aggregate: false
    - ansible.builtin.set_stats:
        data: { who: host }
        per_host: true
`,
    );
    const plain = await runAnsiblePlaybook({ playbook: pb, extraVars: charmVars, timeoutMs: 120_000 });
    expect(plain.facts).toEqual({ port: '8080', who: 'host' });
    const native = await runAnsiblePlaybook({ playbook: pb, extraVars: charmVars, jinja2Native: true, timeoutMs: 120_000 });
    expect(native.facts).toEqual({ port: 8080, who: 'host' });
  });

  it('fails with the failed task name and message; ignored failures are not blamed', async ({ expect }) => {
    const pb = await playbook(
      'fail.yml',
      `
- hosts: all
  gather_facts: false
  tasks:
    - name: optional probe
      ansible.builtin.command: /bin/false
      ignore_errors: true
    - name: check the port is free
      ansible.builtin.fail:
        msg: "port {{ config.port }} is taken"
    - name: never reached
      ansible.builtin.debug: { msg: unreachable }
`,
    );
    const err = await runAnsiblePlaybook({ playbook: pb, extraVars: charmVars, timeoutMs: 120_000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AnsibleError);
    const e = err as AnsibleError;
    expect(e.code).toBe('AGENT_ERR_ANSIBLE_FAILED');
    expect(e.exitCode).toBe(2);
    expect(e.failedTasks).toEqual([{ task: 'check the port is free', host: 'localhost', msg: 'port 8080 is taken' }]);
    expect(e.message).toContain("task 'check the port is free' failed on localhost: port 8080 is taken");
  });

  it("reports a playbook that does not parse with ansible's own error", async ({ expect }) => {
    const pb = await playbook('broken.yml', '- hosts: all\n  tasks:\n    - name: x\n      no.such.module_xyz: {}\n');
    const err = await runAnsiblePlaybook({ playbook: pb, timeoutMs: 120_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AnsibleError);
    expect((err as AnsibleError).failedTasks).toEqual([]);
    expect((err as AnsibleError).message).toMatch(/ERROR!.*no\.such\.module_xyz/);
  });

  it('times out a hanging playbook', async ({ expect }) => {
    const pb = await playbook(
      'hang.yml',
      '- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.command: sleep 60\n',
    );
    await expect(runAnsiblePlaybook({ playbook: pb, timeoutMs: 4_000 })).rejects.toMatchObject({
      code: 'AGENT_ERR_EXEC_TIMEOUT',
    });
  });

  it('says how to install ansible when it is missing, and names a missing playbook', async ({ expect }) => {
    const pb = await playbook('noop.yml', '- hosts: all\n  gather_facts: false\n  tasks: []\n');
    const err = await runAnsiblePlaybook({ playbook: pb, env: { PATH: '/nonexistent' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecError);
    expect((err as ExecError).code).toBe('AGENT_ERR_ANSIBLE_MISSING');
    expect((err as ExecError).message).toContain('apt-get install ansible-core');
    expect((err as ExecError).message).toContain('scripts/ensure-apt.sh ansible-core');
    await expect(runAnsiblePlaybook({ playbook: join(dir, 'nope.yml') })).rejects.toMatchObject({
      code: 'AGENT_ERR_EXEC_BAD_OPTIONS',
    });
  });
});

describe('parseAnsibleReport', () => {
  it('rejects documents that are not result reports', () => {
    expect(() => parseAnsibleReport(null)).toThrow(/not an object/);
    expect(() => parseAnsibleReport({ plays: {}, stats: {} })).toThrow(/plays/);
    expect(() => parseAnsibleReport({ plays: [{ tasks: [{}] }], stats: {} })).toThrow(/malformed task/);
    expect(parseAnsibleReport({ plays: [], stats: {} })).toEqual({
      tasks: [],
      stats: {},
      customStats: {},
      globalCustomStats: {},
    });
  });

  it("carries a failed task's stderr into the error: the lb playbook's nginx on a port already in use", async () => {
    // A real nginx (the lb charm's real playbook) refused by a port someone else holds.
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const port = (holder.address() as AddressInfo).port;
    const unitDir = await mkdtemp(join(dir, 'lb-'));
    try {
      const err = await runAnsiblePlaybook({
        playbook: join(repoRoot, 'charms/lb/playbook/site.yml'),
        extraVars: { unit_name: 'lb/0', unit_dir: unitDir, listen_host: '127.0.0.1', listen_port: port, backends: [] },
        timeoutMs: 60_000,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AnsibleError);
      const message = (err as AnsibleError).message;
      // Not just "non-zero return code": the reason, as nginx printed it.
      expect(message).toMatch(new RegExp(`bind\\(\\) to 127\\.0\\.0\\.1:${port} failed \\(98: Address already in use\\)`));
      expect(message).toMatch(/rc 1/);
      const [task] = (err as AnsibleError).failedTasks;
      expect(task?.task).toBe("check the configuration, then start this unit's nginx or reload it, and check it listens");
      expect(task?.stderr).toMatch(/Address already in use/);
    } finally {
      await new Promise<void>((r) => holder.close(() => r()));
    }
  }, 90_000);

  it("caps a failed task's output in the error (the tail is kept)", async () => {
    const pb = await playbook(
      'noisy.yml',
      `
- hosts: all
  gather_facts: false
  tasks:
    - name: fail loudly
      ansible.builtin.shell: "head -c 300000 /dev/zero | tr '\\\\0' x >&2; echo; echo 'the real reason' >&2; exit 3"
`,
    );
    const err = await runAnsiblePlaybook({ playbook: pb, timeoutMs: 60_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AnsibleError);
    const message = (err as AnsibleError).message;
    expect(message).toMatch(/rc 3/);
    expect(message).toMatch(/the real reason$/);
    expect(message.length).toBeLessThan(2 * ANSIBLE_OUTPUT_TAIL + 500);
  }, 60_000);
});

