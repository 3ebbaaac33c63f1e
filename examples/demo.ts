/**
 * The README's main job. By default on five machines over SSH
 * (demo-machines.ts: network namespaces, each with its own sshd; needs root),
 * else, or with --local, on 127.0.0.1 with one real agent process per unit:
 *
 *   1. deploy examples/hadoop/bundle.yaml (1 namenode, 3 datanodes) and show
 *      progress until the cluster has converged;
 *   2. print `rhizome status` and the namenode's `workers` file;
 *   3. SIGKILL one datanode and watch `workers` re-converge;
 *   4. add a fourth datanode and watch it appear;
 *   5. destroy the deployment (every agent stops cleanly) and exit 0.
 *
 * It prints how long each convergence took. Everything lives in a fresh
 * temporary RHIZOME_HOME, removed at the end (also on Ctrl-C or failure).
 *
 *   scripts/demo.sh            # or: pnpm demo
 *   scripts/demo.sh --local    # the loopback version
 *   pnpm demo -- --keep        # keep the home directory to look around
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addUnit, deploy, destroy, killUnit, readDeployment, unitOf, waitForConvergence } from '@rhizome/agent';
import { rhizomeCommand } from '@rhizome/agent/cli';
import { sshHostsUnavailable } from '../test/ssh-hosts';
import { machinesDemo } from './demo-machines';
import { bold, describeCheck, dim, Progress, secs } from './demo-output';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BUNDLE = join(ROOT, 'examples/hadoop/bundle.yaml');
const NAME = 'hadoop';
/** Every wait is bounded: a demo that hangs is a failed demo. */
const CONVERGE_TIMEOUT_MS = 120_000;
const keep = process.argv.includes('--keep');
const local = process.argv.includes('--local');

async function workers(home: string): Promise<string[]> {
  const text = await readFile(join(home, NAME, 'namenode-0', 'unit', 'workers'), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean);
}

function printWorkers(list: readonly string[]): void {
  console.log(`  ${bold('namenode/0:workers')}`);
  for (const w of list) console.log(`    ${w}`);
  if (list.length === 0) console.log('    (empty)');
}

function status(home: string): void {
  // The compiled CLI, as an operator runs it.
  const cli = rhizomeCommand(['--home', home, 'status']);
  const r = spawnSync(cli.command, [...cli.args], { encoding: 'utf8', timeout: 60_000 });
  const text = (r.stdout || r.stderr || '').trimEnd();
  console.log(text.split('\n').map((l) => `  ${l}`).join('\n'));
}

/**
 * Waits until the deployment has converged and the namenode's workers are
 * `want`, printing each new version of the file as it appears. Resolves with
 * the time from `since`.
 */
async function reconverge(home: string, want: readonly string[], since: number): Promise<number> {
  const progress = new Progress();
  let shown = (await workers(home)).join(' ');
  const deadline = since + CONVERGE_TIMEOUT_MS;
  for (;;) {
    const now = await workers(home);
    if (now.join(' ') !== shown) {
      progress.done();
      console.log(`  ${dim(`+${secs(Date.now() - since)}`)} workers: ${now.join(' ') || '(empty)'}`);
      shown = now.join(' ');
    }
    if (shown === want.join(' ')) {
      const d = await readDeployment(home, NAME);
      await waitForConvergence(d, {
        timeoutMs: Math.max(1_000, deadline - Date.now()),
        reload: () => readDeployment(home, NAME),
        onProgress: (c) => progress.update(describeCheck(c, Date.now() - since)),
      });
      progress.done();
      // Converged: the workers must still be what we want (nothing moved while confirming).
      if ((await workers(home)).join(' ') === want.join(' ')) return Date.now() - since;
    }
    if (Date.now() > deadline) throw new Error(`workers did not become [${want.join(' ')}] within ${secs(CONVERGE_TIMEOUT_MS)}; they are [${shown}]`);
    const d = await readDeployment(home, NAME);
    progress.update(`waiting for workers = ${want.join(' ')}… ${secs(Date.now() - since)} (${d.name}: ${Object.values(d.units).filter((u) => u.state === 'running').length} running)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const home = await mkdtemp(join(tmpdir(), 'rhizome-demo-'));
  let deployed = false;
  const cleanup = async (): Promise<void> => {
    if (deployed) {
      await destroy(home, { deployment: NAME }).catch((err: unknown) => console.error(`destroy failed: ${(err as Error).message}`));
      deployed = false;
    }
    if (!keep) await rm(home, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    console.log(`\n${sig}: stopping the agents…`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const noMachines = local ? 'asked for --local' : await sshHostsUnavailable();
  if (noMachines === undefined) {
    try {
      await machinesDemo(home, home);
    } finally {
      if (!keep) await rm(home, { recursive: true, force: true });
    }
    return;
  }
  const timings: [string, number][] = [];
  try {
    console.log(bold('Rhizome demo: a small HDFS, one agent process per unit, on 127.0.0.1'));
    if (!local) console.log(dim(`  (the five-machine version needs what is missing here: ${noMachines})`));
    console.log(dim(`  bundle ${BUNDLE}`));
    console.log(dim(`  home   ${home}${keep ? ' (kept)' : ''}\n`));

    // 1. Deploy.
    console.log(bold('1. rhizome deploy examples/hadoop/bundle.yaml'));
    const progress = new Progress();
    const t0 = Date.now();
    deployed = true;
    const result = await deploy(BUNDLE, {
      home,
      timeoutMs: CONVERGE_TIMEOUT_MS,
      onPhase: (m) => {
        progress.done();
        console.log(`  ${m}`);
      },
      onProgress: (c, e) => progress.update(describeCheck(c, e)),
    });
    progress.done();
    const first = await reconverge(home, ['datanode-0', 'datanode-1', 'datanode-2'], t0);
    timings.push(['deploy: 4 agents started, related and converged', first]);
    console.log(`  ${bold(`converged in ${secs(first)}`)} ${dim(`(agents agreed ${secs(result.convergedInMs ?? 0)} after relating)`)}\n`);

    // 2. Status and workers.
    console.log(bold('2. rhizome status'));
    status(home);
    printWorkers(await workers(home));
    console.log();

    // 3. SIGKILL a datanode.
    const victim = 'datanode/1';
    const pid = unitOf(await readDeployment(home, NAME), victim).pid;
    console.log(bold(`3. kill -9 ${victim} (pid ${pid}): the mesh declares it failed, the namenode drops it`));
    const t1 = Date.now();
    await killUnit(home, victim, { deployment: NAME });
    const killed = await reconverge(home, ['datanode-0', 'datanode-2'], t1);
    timings.push([`SIGKILL ${victim}: workers re-converged`, killed]);
    console.log(`  ${bold(`re-converged in ${secs(killed)}`)}`);
    printWorkers(await workers(home));
    console.log();

    // 4. Add a fourth datanode.
    console.log(bold('4. rhizome add-unit datanode'));
    const t2 = Date.now();
    const added = await addUnit(home, 'datanode', { deployment: NAME });
    console.log(`  started ${added.unit} (pid ${added.pid})`);
    const grown = await reconverge(home, ['datanode-0', 'datanode-2', 'datanode-3'], t2);
    timings.push([`add-unit: ${added.unit} joined and appears in workers`, grown]);
    console.log(`  ${bold(`converged in ${secs(grown)}`)}`);
    printWorkers(await workers(home));
    console.log();
    status(home);
    console.log();

    // 5. Stop everything.
    console.log(bold('5. rhizome destroy'));
    const t3 = Date.now();
    await destroy(home, { deployment: NAME });
    deployed = false;
    console.log(`  every agent stopped (SIGTERM: each left the mesh) in ${secs(Date.now() - t3)}\n`);

    console.log(bold('Convergence times'));
    const width = Math.max(...timings.map(([what]) => what.length));
    for (const [what, ms] of timings) console.log(`  ${what.padEnd(width)}  ${secs(ms).padStart(7)}`);
  } finally {
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
