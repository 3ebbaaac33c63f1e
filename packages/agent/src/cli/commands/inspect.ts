/**
 * Read-only commands: `members`, `facts UNIT`, `runs UNIT` (`status` has its
 * own file, commands/status.ts).
 */
import type { Command } from 'commander';
import type { Member } from '@rhizome/gossip';
import { compareUnitNames } from '../../deploy/deployment';
import { formatMs, printJson, table } from '../output';
import { anyClient, unitClient, type GlobalOptions } from '../target';

export function registerInspect(program: Command, globals: () => GlobalOptions): void {
  program
    .command('members')
    .description('the gossip members as one agent sees them')
    .action(async () => {
      const g = globals();
      const client = await anyClient(g);
      const members = await client.get<Member[]>('/members');
      if (g.json) return printJson(members);
      process.stdout.write(
        `${table(
          ['Name', 'Address', 'Status', 'Service', 'Incarnation'],
          [...members].sort((a, b) => compareUnitNames(a.name, b.name)).map((m) => [m.name, m.address, m.status, m.tags['svc'] ?? '', m.incarnation]),
        )}\n`,
      );
    });

  program
    .command('facts')
    .argument('<unit>', 'unit name, e.g. namenode/0')
    .description("a unit's facts")
    .action(async (unit: string) => {
      const g = globals();
      const client = await unitClient(g, unit);
      const facts = await client.get<Record<string, unknown>>('/facts');
      if (g.json) return printJson(facts);
      process.stdout.write(`${table(['Fact', 'Value'], Object.entries(facts).map(([k, v]) => [k, JSON.stringify(v)]))}\n`);
    });

  program
    .command('runs')
    .argument('<unit>', 'unit name')
    .description("a unit's recent runs")
    .action(async (unit: string) => {
      const g = globals();
      const client = await unitClient(g, unit);
      const runs = await client.get<{ runId: string; eventLabel: string; outcome: string; durationMs: number; steps: { handler: string }[]; error?: { message: string } }[]>('/runs');
      if (g.json) return printJson(runs);
      process.stdout.write(
        `${table(
          ['Run', 'Event', 'Outcome', 'Took', 'Handlers'],
          runs.map((r) => [r.runId, r.eventLabel, r.outcome + (r.error ? `: ${r.error.message}` : ''), formatMs(Math.round(r.durationMs)), r.steps.map((s) => s.handler).join(' ')]),
        )}\n`,
      );
    });
}
