/**
 * Local deployments: `deploy BUNDLE` (and `deploy --add SERVICE`),
 * `add-unit SERVICE`, `kill UNIT` (SIGKILL: a crash, for demos and tests),
 * `start UNIT` (restart from its data directory), `stop UNIT`, `destroy`,
 * `wait` (until converged). Progress while waiting for convergence.
 * `destroy` and `stop` print each workload daemon a unit left behind that
 * they stopped, or left alone (its pid is no longer the workload's).
 */
import type { Command } from 'commander';
import { destroy } from '../../deploy/destroy';
import { addUnit, killUnit, removeUnit, startUnit, stopUnit } from '../../deploy/unit-commands';
import { deployBundle } from '../../deploy/extend';
import { waitForConvergence, type ConvergenceCheck, type WaitOptions } from '../../deploy/converge';
import { readDeployment, rhizomeHome } from '../../deploy/deployment';
import { describeWorkloadReports, type WorkloadReport } from '../../deploy/workloads';
import { formatMs, printJson, Progress } from '../output';
import type { GlobalOptions } from '../target';
import { addUnits, convergeSecondsArg, MAX_SCALE, registerScale, unitCountArg } from './scale';
import { logLevelArg, UsageError } from '../usage';
import { registerUpgradeModel } from './upgrade-model';
import { registerUpgrade } from './upgrade';

function progressLine(check: ConvergenceCheck, elapsedMs: number): string {
  if (check.converged) return `converging... ${formatMs(elapsedMs)}: all ${check.live.length} unit(s) agree, confirming`;
  return `converging... ${formatMs(elapsedMs)}: ${check.live.length} live unit(s), ${check.reasons.length} pending: ${check.reasons[0] ?? ''}`;
}

function progressKey(check: ConvergenceCheck): string {
  return `${check.converged}|${check.live.length}|${check.reasons[0] ?? ''}`;
}

async function waitConverged(g: GlobalOptions, timeoutMs: number, extra: Pick<WaitOptions, 'tolerate'> = {}): Promise<number> {
  const home = rhizomeHome(g.home);
  const d = await readDeployment(home, g.deployment);
  const progress = new Progress();
  try {
    const ms = await waitForConvergence(d, { ...extra, timeoutMs, reload: () => readDeployment(home, d.name), onProgress: (c, e) => progress.update(progressLine(c, e), progressKey(c)) });
    progress.done(`converged in ${formatMs(ms)}`);
    return ms;
  } catch (err) {
    progress.done();
    throw err;
  }
}

/** One line per workload stopped or left alone (a workload that was not running says nothing). */
function printWorkloads(reports: readonly WorkloadReport[]): void {
  for (const line of describeWorkloadReports(reports)) process.stdout.write(`${line}\n`);
}

/** `--timeout` (seconds, parsed by convergeSecondsArg) in ms. */
function timeout(seconds: number): number {
  return seconds * 1000;
}

interface SpawnFlags {
  logLevel?: string;
  fsync?: boolean;
  wait?: boolean;
  timeout: number;
}

export function registerDeploy(program: Command, globals: () => GlobalOptions): void {
  const spawnOpts = (f: SpawnFlags, g: GlobalOptions) => ({
    ...(f.logLevel ? { logLevel: f.logLevel } : {}),
    ...(f.fsync === false ? { noFsync: true } : {}),
    ...(g.deployment ? { deployment: g.deployment } : {}),
  });

  program
    .command('deploy')
    .argument('[bundle]', 'bundle file (YAML)')
    .option('--add <service>', 'start one more unit of SERVICE in the existing deployment')
    .option('--no-wait', 'do not wait for convergence')
    .option('--timeout <seconds>', 'convergence timeout', convergeSecondsArg, 120)
    .option('--log-level <level>', "the agents' log level", logLevelArg)
    .option('--no-fsync', 'agents skip fsync (tests only)')
    .description("start the agents of a bundle on its machines (this one, or over SSH as its machines: say), relate them and wait for convergence")
    .action(async (bundle: string | undefined, f: SpawnFlags & { add?: string }) => {
      const g = globals();
      const home = rhizomeHome(g.home);
      if (f.add !== undefined) {
        const u = await addUnit(home, f.add, spawnOpts(f, g));
        process.stderr.write(`started ${u.unit} (pid ${u.pid})\n`);
        if (f.wait !== false) await waitConverged(g, timeout(f.timeout));
        if (g.json) printJson(u);
        return;
      }
      if (bundle === undefined) throw new UsageError('deploy needs a BUNDLE file (or --add SERVICE), e.g. rhizome deploy bundle.yaml', 'AGENT_ERR_BAD_OPTIONS');
      const progress = new Progress();
      const started = Date.now();
      const result = await deployBundle(bundle, {
        home,
        timeoutMs: timeout(f.timeout),
        wait: f.wait !== false,
        ...(f.logLevel ? { logLevel: f.logLevel } : {}),
        ...(f.fsync === false ? { noFsync: true } : {}),
        onPhase: (m) => progress.done(m),
        onProgress: (c, e) => progress.update(progressLine(c, e), progressKey(c)),
      }).catch((err: unknown) => {
        progress.done();
        throw err;
      });
      if (result.convergedInMs !== undefined) progress.done(`converged in ${formatMs(result.convergedInMs)} (deploy took ${formatMs(Date.now() - started)})`);
      if (g.json) return printJson(result);
      const x = result.extended;
      if (x === undefined) {
        process.stdout.write(`deployment ${result.deployment.name}: ${Object.keys(result.deployment.units).length} unit(s); 'rhizome status' shows them\n`);
        return;
      }
      // Deployed onto a running deployment: what was added, and what was left alone.
      for (const note of x.notes) process.stdout.write(`${note}\n`);
      const what = [x.added.length > 0 ? `added ${x.added.join(', ')}` : '', x.related.length > 0 ? `related ${x.related.map(([a, b]) => `${a} ${b}`).join(', ')}` : ''].filter(Boolean);
      process.stdout.write(`deployment ${result.deployment.name} is running: ${what.length > 0 ? what.join('; ') : `nothing to add (every service and relation of ${bundle} is deployed)`}\n`);
    });

  program
    .command('add-unit')
    .argument('<service>', 'service of the deployment')
    .option('--no-wait', 'do not wait for convergence')
    .option('--timeout <seconds>', 'convergence timeout', convergeSecondsArg, 120)
    .option('--log-level <level>', "the agent's log level", logLevelArg)
    .option('--no-fsync', 'skip fsync (tests only)')
    .option('-n, --num-units <n>', `how many units to add (1 to ${MAX_SCALE})`, unitCountArg, 1)
    .option('--to <machine>', "machine id to place the units on (default: spread over the machines the service runs on, fewest of its units first)")
    .description('start more units of a service (one by default)')
    .action(async (service: string, f: SpawnFlags & { numUnits: number; to?: string }) => {
      const g = globals();
      const n = f.numUnits;
      const units = await addUnits(rhizomeHome(g.home), service, n, { ...spawnOpts(f, g), ...(f.to !== undefined ? { to: f.to } : {}) });
      for (const u of units) process.stderr.write(`started ${u.unit} (pid ${u.pid})\n`);
      if (f.wait !== false) await waitConverged(g, timeout(f.timeout));
      if (g.json) printJson(n === 1 ? units[0] : units);
      else process.stdout.write(`${units.map((u) => u.unit).join(', ')} added\n`);
    });
  registerScale(program, globals, waitConverged);
  registerUpgrade(program, globals, waitConverged);
  registerUpgradeModel(program, globals);

  program
    .command('kill')
    .argument('<unit>', 'unit to SIGKILL')
    .description('SIGKILL a unit (a crash, for demos and tests): its workload daemons keep running until it is started, stopped or destroyed')
    .action(async (unit: string) => {
      const g = globals();
      const u = await killUnit(rhizomeHome(g.home), unit, g.deployment ? { deployment: g.deployment } : {});
      if (g.json) printJson(u);
      else process.stdout.write(`killed ${unit} (pid ${u.pid})\n`);
    });

  program
    .command('stop')
    .argument('<unit>', 'unit to stop gracefully')
    .description('SIGTERM a unit: it leaves the mesh and exits; then any workload daemon it left running is stopped')
    .action(async (unit: string) => {
      const g = globals();
      const u = await stopUnit(rhizomeHome(g.home), unit, g.deployment ? { deployment: g.deployment } : {});
      if (g.json) return printJson(u);
      printWorkloads(u.workloads);
      process.stdout.write(`stopped ${unit}\n`);
    });

  program
    .command('remove-unit')
    .argument('<unit>', 'unit to remove for good')
    .description('stop a unit gracefully (related units see it depart), stop its workloads, delete its record and directory; peers forget it')
    .action(async (unit: string) => {
      const g = globals();
      const u = await removeUnit(rhizomeHome(g.home), unit, g.deployment ? { deployment: g.deployment } : {});
      if (g.json) return printJson(u);
      printWorkloads(u.workloads);
      process.stdout.write(`removed ${unit}\n`);
    });

  program
    .command('start')
    .argument('<unit>', 'stopped or killed unit')
    .option('--no-wait', 'do not wait for convergence')
    .option('--timeout <seconds>', 'convergence timeout', convergeSecondsArg, 120)
    .option('--log-level <level>', "the agent's log level", logLevelArg)
    .option('--no-fsync', 'skip fsync (tests only)')
    .description('restart a unit from its data directory')
    .action(async (unit: string, f: SpawnFlags) => {
      const g = globals();
      const u = await startUnit(rhizomeHome(g.home), unit, spawnOpts(f, g));
      process.stderr.write(`started ${u.unit} (pid ${u.pid})\n`);
      if (f.wait !== false) await waitConverged(g, timeout(f.timeout));
      if (g.json) printJson(u);
      else process.stdout.write(`${unit} running\n`);
    });

  program
    .command('wait')
    .option('--timeout <seconds>', 'convergence timeout', convergeSecondsArg, 120)
    .description('wait until the deployment has converged')
    .action(async (f: { timeout: number }) => {
      const g = globals();
      const ms = await waitConverged(g, timeout(f.timeout));
      if (g.json) printJson({ convergedInMs: ms });
    });

  program
    .command('destroy')
    .argument('[name]', 'deployment (default: the last one)')
    .option('--keep', 'keep the data directories')
    .description('stop every unit of a deployment (SIGTERM, then SIGKILL) and the workload daemons units left behind, and remove its directory')
    .action(async (name: string | undefined, f: { keep?: boolean }) => {
      const g = globals();
      const dep = name ?? g.deployment;
      const d = await destroy(rhizomeHome(g.home), { ...(dep ? { deployment: dep } : {}), ...(f.keep ? { keep: true } : {}) });
      if (g.json) return printJson({ destroyed: d.name, workloads: d.workloads });
      printWorkloads(d.workloads);
      process.stdout.write(`destroyed ${d.name}\n`);
    });
}
