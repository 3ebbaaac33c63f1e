/**
 * `rhizome upgrade-model`: moves the deployment's running agents onto the
 * release installed here, one unit at a time, each back in the mesh and the
 * deployment converged before the next (deploy/upgrade-agents.ts), like
 * `juju upgrade-model`. Stops at the first unit that does not come back
 * (exit 1, AGENT_ERR_UPGRADE), which goes back to its previous release where
 * its machine still has it; the units not reached keep the old release.
 * `--dry-run` only says which units would move. `rhizome status` shows each
 * unit's version.
 */
import type { Command } from 'commander';
import { rhizomeHome } from '../../deploy/deployment';
import type { UnitUpgrade, UpgradeReport } from '../../deploy/upgrade-agents';
import { agentVersion } from '../../runtime';
import { formatDuration } from '../logs/format';
import { printJson, Progress, table } from '../output';
import type { GlobalOptions } from '../target';
import { logLevelArg } from '../usage';
import { convergeSecondsArg } from './scale';

function describe(u: UnitUpgrade): string {
  switch (u.outcome) {
    case 'upgraded':
      return `upgraded from ${u.from || '(unknown)'} in ${formatDuration(u.tookMs ?? 0)}`;
    case 'already':
      return 'already on this release';
    case 'not-running':
      return u.detail ?? 'not running';
    case 'pending':
      return 'not moved (yet): runs its release';
    case 'failed':
      return `FAILED: ${u.detail ?? ''}`;
  }
}

function printReport(r: UpgradeReport): void {
  process.stdout.write(`${table(['Unit', 'Was', 'Now', 'Outcome'], r.units.map((u) => [u.unit, u.from || '-', u.now || '-', describe(u)]))}\n`);
}

export function registerUpgradeModel(program: Command, globals: () => GlobalOptions): void {
  program
    .command('upgrade-model')
    .option('--timeout <seconds>', 'how long each unit has to come back and the deployment to converge', convergeSecondsArg, 120)
    .option('--dry-run', 'only show which units would move onto this release')
    .option('--log-level <level>', "the restarted agents' log level", logLevelArg)
    .option('--no-fsync', 'restarted agents skip fsync (tests only)')
    .description(`move the deployment's running agents onto the release installed here (${agentVersion()}), one unit at a time; stops at the first that does not come back`)
    .action(async (f: { timeout: number; dryRun?: boolean; logLevel?: string; fsync?: boolean }) => {
      const g = globals();
      const { upgradeAgents, planUpgrade, UpgradeError } = await import('../../deploy/upgrade-agents');
      const home = rhizomeHome(g.home);
      const deployment = g.deployment !== undefined ? { deployment: g.deployment } : {};
      if (f.dryRun) {
        const plan = await planUpgrade(home, deployment);
        if (g.json) return printJson(plan);
        return printReport(plan);
      }
      const progress = new Progress();
      try {
        const r = await upgradeAgents(home, {
          ...deployment,
          timeoutMs: f.timeout * 1000,
          ...(f.logLevel !== undefined ? { logLevel: f.logLevel } : {}),
          ...(f.fsync === false ? { noFsync: true } : {}),
          onProgress: (m) => progress.done(m),
        });
        if (g.json) return printJson(r);
        printReport(r);
        const moved = r.units.filter((u) => u.outcome === 'upgraded').length;
        process.stdout.write(`deployment ${r.deployment}: ${moved} unit(s) moved onto ${r.version}${moved < r.units.length ? `, ${r.units.length - moved} left as they were` : ''}\n`);
      } catch (err) {
        if (err instanceof UpgradeError && !g.json) printReport(err.report);
        throw err;
      }
    });
}
