/**
 * Machines of a deployment (Juju's manual provider): `add-machine
 * ssh:user@host[:port] [--dir DIR]`, `machines`, `remove-machine N`.
 * Units go onto a machine with `add-unit SERVICE --to N` or a bundle's `to:`.
 * `stop-workloads --data-dir D` (hidden) runs on a machine, over SSH, once a
 * unit's agent and supervisor are gone: it stops the workload daemons the
 * unit's workloads.json names, exactly as `stop` does for a local unit.
 */
import type { Command } from 'commander';
import { readDeployment, rhizomeHome } from '../../deploy/deployment';
import { addMachine, listMachines, parseMachineSpec, removeMachine } from '../../deploy/machines';
import { stopUnitWorkloads } from '../../deploy/workloads';
import { InvalidArgumentError } from 'commander';
import { UsageError } from '../usage';

function absoluteDir(text: string): string {
  if (!text.startsWith('/')) throw new InvalidArgumentError('takes an absolute path on the machine, e.g. /var/lib/rhizome');
  return text;
}

/** `ssh:user@host[:port]` or `local`, checked while parsing: a malformed one is bad usage. */
function machineSpec(text: string): string {
  try {
    parseMachineSpec(text);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return text;
}
import { printJson, table } from '../output';
import type { GlobalOptions } from '../target';

export function registerMachines(program: Command, globals: () => GlobalOptions): void {
  program
    .command('add-machine')
    .argument('<spec>', 'ssh:user@host[:port] (or local)', machineSpec)
    .option('--dir <dir>', 'where units live on the machine (absolute)', absoluteDir, '/var/lib/rhizome')
    .description('check a machine over SSH (reachable, Node.js >= 20) and add it to the deployment')
    .action(async (spec: string, f: { dir: string }) => {
      const g = globals();
      const m = await addMachine(rhizomeHome(g.home), spec, { dir: f.dir, ...(g.deployment ? { deployment: g.deployment } : {}) });
      if (g.json) return printJson(m);
      process.stdout.write(`machine ${m.id} added${m.check ? ` (${m.ssh}, node ${m.check.nodeVersion}, supervisor ${m.check.supervisor})` : ' (local)'}\n`);
    });

  program
    .command('machines')
    .description("the deployment's machines and the units on each")
    .action(async () => {
      const g = globals();
      const list = listMachines(await readDeployment(rhizomeHome(g.home), g.deployment));
      if (g.json) return printJson(list);
      if (list.length === 0) return void process.stdout.write("no machines: every unit runs here ('rhizome add-machine ssh:user@host' adds one)\n");
      process.stdout.write(`${table(['Machine', 'SSH', 'Dir', 'Units'], list.map((m) => [m.id, m.ssh ?? 'local', m.dir ?? '', m.units.join(' ')]))}\n`);
    });

  program
    .command('remove-machine')
    .argument('<id>', 'machine id')
    .description("forget a machine no unit uses (its directory for this deployment is removed)")
    .action(async (id: string) => {
      const g = globals();
      const m = await removeMachine(rhizomeHome(g.home), id, g.deployment ? { deployment: g.deployment } : {});
      if (g.json) return printJson(m);
      process.stdout.write(`machine ${m.id} removed\n`);
    });

  program
    .command('stop-workloads', { hidden: true })
    .option('--remove-data', "the unit goes for good: also remove each stopped workload's declared data directory")
    .description("stop the workload daemons a unit whose agent is gone left running (--data-dir: the unit's); prints the reports as JSON")
    .action(async (f: { removeData?: boolean }) => {
      const g = globals();
      if (g.dataDir === undefined) throw new UsageError('stop-workloads needs --data-dir DIR (the unit\'s data directory)', 'AGENT_ERR_BAD_OPTIONS');
      printJson(await stopUnitWorkloads({ unit: g.dataDir, dataDir: g.dataDir }, { removeData: f.removeData === true }));
    });
}
