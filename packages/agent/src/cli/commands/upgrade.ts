/**
 * `rhizome upgrade-charm SERVICE [--path DIR]`: a new version of a service's
 * charm (DIR, default the charm's current directory, re-read), rolled out one
 * unit at a time like `juju refresh`: each unit stops gracefully, restarts
 * from its own data directory on the new charm (its facts, relation views and
 * links are kept), and the deployment converges before the next unit goes.
 * A unit restarts in place as for `upgrade-model` (deploy/restart-stop.ts):
 * it stays in the mesh, so related units see no departed or joined, its
 * charm's `stop` does not run, and its workloads keep serving.
 *
 * A unit in error that the roll-out has not reached yet does not stop it:
 * the new charm retries that unit's failed run when its turn comes (so an
 * upgrade is how a charm's fix reaches units stuck on its bug). An upgraded
 * unit that fails stops the roll-out, with its error.
 *
 * Refused before any unit stops when the new charm could not talk to the
 * units it is related to: an endpoint used by a relation is missing, or has
 * another role or interface than the one the relation was made on.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { loadCharm } from '../../charm/load';
import { stopForRestart } from '../../deploy/restart-stop';
import { startUnit } from '../../deploy/unit-commands';
import { prepareCharm } from '../../deploy/validate';
import { compareUnitNames, readDeployment, rhizomeHome, unitOf, updateDeployment, withUnitLock, type Deployment } from '../../deploy/deployment';
import { AgentError } from '../../errors';
import { formatDuration } from '../logs/format';
import { printJson } from '../output';
import { convergeSecondsArg } from './scale';
import type { GlobalOptions } from '../target';
import type { WaitOptions } from '../../deploy/converge';

/** The CLI's convergence wait with its progress line (commands/deploy.ts). */
export type WaitConverged = (g: GlobalOptions, timeoutMs: number, extra?: Pick<WaitOptions, 'tolerate'>) => Promise<number>;

interface EndpointShape {
  role: string;
  interface: string;
}

async function endpointsOf(charmDir: string): Promise<Record<string, EndpointShape>> {
  const module = await prepareCharm(charmDir);
  const charm = await loadCharm(charmDir, module);
  return charm.metadata.endpoints as Record<string, EndpointShape>;
}

/** Every relation of `service` that the new endpoints would break, as readable reasons (empty: compatible). */
export function incompatibilities(d: Deployment, service: string, before: Record<string, EndpointShape>, after: Record<string, EndpointShape>): string[] {
  const reasons: string[] = [];
  for (const [a, b] of d.relations) {
    for (const [mine, other] of [
      [a, b],
      [b, a],
    ] as const) {
      const [svc, ep] = mine.split(':') as [string, string];
      if (svc !== service) continue;
      const old = before[ep];
      const next = after[ep];
      if (next === undefined) reasons.push(`${mine} is related to ${other}, but the new charm has no endpoint "${ep}"`);
      else if (old !== undefined && (next.interface !== old.interface || next.role !== old.role)) {
        reasons.push(`${mine} is related to ${other} on interface "${old.interface}" (${old.role}), but the new charm's "${ep}" is "${next.interface}" (${next.role})`);
      }
    }
  }
  return reasons;
}

/**
 * A unit whose agent did not start on the new charm (it throws when loaded, or its handlers are
 * refused): the roll-out stops there, and the unit goes back to the charm it ran, so a bad charm
 * costs one unit a restart, not its service. Returns the error that says so.
 */
async function rollBack(home: string, deployment: string, service: string, unit: string, from: string, to: string, cause: unknown, done: string[], notYet: string[]): Promise<AgentError> {
  const why = (cause as Error).message;
  await updateDeployment(home, deployment, (fresh) => {
    const rec = fresh.units[unit];
    if (rec) (rec as { charmDir: string }).charmDir = from;
  });
  let back: string;
  if (from === to) back = `${unit} is down: its charm was changed in place; fix it and run 'rhizome upgrade-charm ${service}' again (or 'rhizome start ${unit}')`;
  else {
    back = await startUnit(home, unit, { deployment }).then(
      () => `${unit} runs again on ${from}`,
      (err: unknown) => `${unit} did not start on ${from} either (${(err as Error).message}); 'rhizome start ${unit}' tries again`,
    );
  }
  const rest = [done.length > 0 ? `upgraded: ${done.join(', ')}` : '', notYet.length > 0 ? `not upgraded: ${notYet.join(', ')}` : ''].filter(Boolean).join('; ');
  return new AgentError('AGENT_ERR_UPGRADE', `upgrade of ${service} stopped at ${unit}: its agent did not start on the new charm ${to}:\n${why}\n${back}${rest ? `; ${rest}` : ''}`, { cause });
}

export function registerUpgrade(program: Command, globals: () => GlobalOptions, waitConverged: WaitConverged): void {
  program
    .command('upgrade-charm')
    .argument('<service>', 'service of the deployment')
    .option('--path <dir>', "the new charm's directory (default: the current one, re-read)")
    .option('--timeout <seconds>', 'convergence timeout after each unit', convergeSecondsArg, 120)
    .description('roll a new charm version out, one unit at a time, keeping each unit\'s state; refused if related units could not talk to it')
    .action(async (service: string, opts: { path?: string; timeout: number }) => {
      const g = globals();
      const seconds = opts.timeout;
      const home = rhizomeHome(g.home);
      const d = await readDeployment(home, g.deployment);
      const units = Object.values(d.units)
        .filter((u) => u.service === service)
        .sort((a, b) => compareUnitNames(a.unit, b.unit));
      if (units.length === 0) {
        const services = [...new Set(Object.values(d.units).map((u) => u.service))].sort();
        throw new AgentError('AGENT_ERR_UNKNOWN_UNIT', `deployment "${d.name}" has no service "${service}"; its services are ${services.join(', ') || '(none)'}`);
      }
      const from = units[0]!.charmDir;
      const to = opts.path !== undefined ? resolve(opts.path) : from;
      // Checked before any unit stops: the new charm loads, type-checks, and fits the relations.
      const [before, after] = await Promise.all([endpointsOf(from), endpointsOf(to)]);
      const reasons = incompatibilities(d, service, before, after);
      if (reasons.length > 0) {
        throw new AgentError('AGENT_ERR_DEPLOY', `upgrade of ${service} refused, its related units could not talk to the new charm: ${reasons.join('; ')}. Remove those relations first (rhizome unrelate), or keep the endpoints' interfaces.`);
      }
      const started = Date.now();
      const done: { unit: string; tookMs: number }[] = [];
      // Units not upgraded yet may be in error on the old charm (the upgrade
      // is how their author ships the fix): that must not stop the roll-out
      // before their turn, when the new charm retries their failed run.
      const notYet = new Set(units.map((u) => u.unit));
      for (const u of units) {
        notYet.delete(u.unit);
        const t0 = Date.now();
        const wasRunning = u.state === 'running';
        if (wasRunning) await withUnitLock(home, d.name, u.unit, async () => stopForRestart(d, unitOf(await readDeployment(home, d.name), u.unit)));
        await updateDeployment(home, d.name, (fresh) => {
          const rec = fresh.units[u.unit];
          if (rec) (rec as { charmDir: string }).charmDir = to;
        });
        if (wasRunning) {
          try {
            await startUnit(home, u.unit, { deployment: d.name });
          } catch (err) {
            throw await rollBack(home, d.name, service, u.unit, from, to, err, done.map((x) => x.unit), [...notYet]);
          }
          await waitConverged(g, seconds * 1000, { tolerate: notYet });
        }
        done.push({ unit: u.unit, tookMs: Date.now() - t0 });
        if (!g.json) process.stdout.write(`${u.unit}: ${wasRunning ? 'upgraded and converged' : 'upgraded (not running: takes it when started)'} in ${formatDuration(Date.now() - t0)}\n`);
      }
      if (g.json) return printJson({ service, charm: to, units: done, tookMs: Date.now() - started });
      process.stdout.write(`${service}: ${units.length} unit(s) on ${to} in ${formatDuration(Date.now() - started)}\n`);
    });
}
