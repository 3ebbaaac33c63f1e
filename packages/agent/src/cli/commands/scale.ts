/**
 * `rhizome scale SERVICE N`: as many units of SERVICE as N, like
 * `juju scale-application`. Growing starts the new units at once (each gets
 * the next never-used number); shrinking removes units for good (their
 * related units see them depart), the ones already down first, then the
 * highest-numbered. Then it waits for convergence, as `add-unit` does.
 * `add-unit SERVICE -n N` uses the same `addUnits`.
 */
import type { Command } from 'commander';
import { addUnit, removeUnit } from '../../deploy/unit-commands';
import { compareUnitNames, isAlive, readDeployment, rhizomeHome, type DeployedUnit } from '../../deploy/deployment';
import { AgentError } from '../../errors';
import { logLevelArg, secondsArg, wholeArg } from '../usage';
import { printJson } from '../output';
import type { GlobalOptions } from '../target';

/** The most units one command adds or keeps per service: a typo (`scale web 300`) should not fork 300 agents. */
export const MAX_SCALE = 64;

export interface SpawnOptions {
  deployment?: string;
  logLevel?: string;
  noFsync?: boolean;
  /** Machine id to place new units on (`add-unit --to N`). */
  to?: string;
}

/** A unit count for `scale` and `add-unit -n` (commander argument parser: a bad one exits 2). */
export const unitCountArg = wholeArg(1, MAX_SCALE, 'a number of units');

/** Convergence timeouts of the deploy commands, in seconds. */
export const CONVERGE_TIMEOUT_MAX_S = 86_400;
export const convergeSecondsArg = secondsArg(CONVERGE_TIMEOUT_MAX_S, '300');

/** Starts `n` more units of `service`, all at once; resolves with the ones started (throws the first failure after all settled). */
export async function addUnits(home: string, service: string, n: number, opts: SpawnOptions): Promise<DeployedUnit[]> {
  const results = await Promise.allSettled(Array.from({ length: n }, () => addUnit(home, service, opts)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<DeployedUnit>).value).sort((a, b) => compareUnitNames(a.unit, b.unit));
}

export interface ScaleResult {
  service: string;
  from: number;
  to: number;
  added: string[];
  removed: string[];
}

/** Brings `service` to `target` units (see the file header for which go). */
export async function scaleService(home: string, service: string, target: number, opts: SpawnOptions): Promise<ScaleResult> {
  const d = await readDeployment(home, opts.deployment);
  const units = Object.values(d.units).filter((u) => u.service === service);
  if (units.length === 0) {
    const services = [...new Set(Object.values(d.units).map((u) => u.service))].sort();
    throw new AgentError('AGENT_ERR_UNKNOWN_UNIT', `deployment "${d.name}" has no service "${service}"; its services are ${services.join(', ') || '(none)'}`);
  }
  const result: ScaleResult = { service, from: units.length, to: target, added: [], removed: [] };
  if (target > units.length) {
    result.added = (await addUnits(home, service, target - units.length, { ...opts, deployment: d.name })).map((u) => u.unit);
  } else if (target < units.length) {
    const down = (u: DeployedUnit): number => (u.state === 'running' && isAlive(u.pid) ? 1 : 0);
    const victims = [...units].sort((a, b) => down(a) - down(b) || compareUnitNames(b.unit, a.unit)).slice(0, units.length - target);
    // One at a time: each removal is announced to the mesh before the next.
    for (const u of victims) {
      await removeUnit(home, u.unit, { deployment: d.name });
      result.removed.push(u.unit);
    }
  }
  return result;
}

export function registerScale(program: Command, globals: () => GlobalOptions, waitConverged: (g: GlobalOptions, timeoutMs: number) => Promise<number>): void {
  program
    .command('scale')
    .argument('<service>', 'service of the deployment')
    .argument('<n>', `how many units it should have (1 to ${MAX_SCALE})`, unitCountArg)
    .option('--no-wait', 'do not wait for convergence')
    .option('--timeout <seconds>', 'convergence timeout', convergeSecondsArg, 120)
    .option('--log-level <level>', "new agents' log level", logLevelArg)
    .option('--no-fsync', 'new agents skip fsync (tests only)')
    .description('add or remove units until SERVICE has N (removes down units first, then the highest-numbered)')
    .action(async (service: string, target: number, f: { wait?: boolean; timeout: number; logLevel?: string; fsync?: boolean }) => {
      const g = globals();
      const seconds = f.timeout;
      const r = await scaleService(rhizomeHome(g.home), service, target, {
        ...(g.deployment ? { deployment: g.deployment } : {}),
        ...(f.logLevel ? { logLevel: f.logLevel } : {}),
        ...(f.fsync === false ? { noFsync: true } : {}),
      });
      if (f.wait !== false && (r.added.length > 0 || r.removed.length > 0)) await waitConverged(g, seconds * 1000);
      if (g.json) return printJson(r);
      const what = [r.added.length > 0 ? `added ${r.added.join(', ')}` : '', r.removed.length > 0 ? `removed ${r.removed.join(', ')}` : ''].filter(Boolean).join('; ');
      process.stdout.write(r.from === r.to ? `${service} already has ${r.to} unit(s)\n` : `scaled ${service} from ${r.from} to ${r.to} unit(s): ${what}\n`);
    });
}
