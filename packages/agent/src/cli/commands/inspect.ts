/**
 * Read-only commands: `status` (like `juju status`: services, units, the
 * workload status the charm set, relations, the failing handler and its
 * error), `members`, `facts UNIT`, `runs UNIT`.
 */
import type { Command } from 'commander';
import type { Member } from '@rhizome/gossip';
import type { AgentStatus } from '../../agent';
import { clientFor, compareUnitNames, isAlive, type Deployment } from '../../deploy/deployment';
import { formatMs, printJson, table } from '../output';
import { anyClient, resolveTarget, unitClient, type GlobalOptions } from '../target';

interface UnitRow {
  unit: string;
  service: string;
  up: boolean;
  status?: AgentStatus;
  error?: string;
}

async function collectStatus(g: GlobalOptions): Promise<{ deployment?: string; units: UnitRow[] }> {
  const t = await resolveTarget(g);
  if (t.kind === 'single') {
    const s = await t.client.get<AgentStatus>('/status');
    return { units: [{ unit: s.unit, service: s.service, up: true, status: s }] };
  }
  const d: Deployment = t.deployment;
  const units = await Promise.all(
    Object.values(d.units)
      .sort((a, b) => compareUnitNames(a.unit, b.unit))
      .map(async (u): Promise<UnitRow> => {
        if (u.state !== 'running' || !isAlive(u.pid)) return { unit: u.unit, service: u.service, up: false, error: u.state === 'running' ? 'down' : u.state };
        try {
          const client = await clientFor(u, 5_000);
          return { unit: u.unit, service: u.service, up: true, status: await client.get<AgentStatus>('/status') };
        } catch (err) {
          return { unit: u.unit, service: u.service, up: false, error: `unreachable: ${(err as Error).message}` };
        }
      }),
  );
  return { deployment: d.name, units };
}

export function renderStatus(report: { deployment?: string; units: UnitRow[] }): string {
  const out: string[] = [];
  if (report.deployment) out.push(`Deployment ${report.deployment}`);
  const services = new Map<string, UnitRow[]>();
  for (const u of report.units) services.set(u.service, [...(services.get(u.service) ?? []), u]);
  out.push(
    table(
      ['Service', 'Charm', 'Units', 'Up'],
      [...services].map(([name, us]) => [name, us.find((u) => u.status)?.status?.charm ?? '?', us.length, us.filter((u) => u.up).length]),
    ),
  );
  out.push(
    table(
      ['Unit', 'Agent', 'Workload', 'Message', 'Members'],
      report.units.map((u) => {
        const s = u.status;
        if (!s) return [u.unit, u.error ?? 'down', '', '', ''];
        return [u.unit, s.engine.state, s.workload?.state ?? 'unknown', s.workload?.message ?? '', `${s.members.alive}/${s.members.total}`];
      }),
    ),
  );
  const relRows: string[][] = [];
  for (const u of report.units) {
    for (const r of u.status?.relations ?? []) {
      const links = r.links.map((l) => `${l.remoteUnit} applied=${l.applied}${l.unacked ? ` unacked=${l.unacked}` : ''}${l.buffered ? ` buffered=${l.buffered}` : ''}`).join(', ');
      relRows.push([u.unit, `${r.endpoint} -> ${r.remoteService}:${r.remoteEndpoint}`, r.units.map((x) => `${x.unit}@${x.version}`).join(' ') || (r.established ? '(none)' : r.problem ?? 'pending'), r.departed.join(' '), links]);
    }
  }
  if (relRows.length > 0) out.push(table(['Unit', 'Relation', 'Remote units', 'Departed', 'Links'], relRows));
  const errors = report.units.filter((u) => u.status?.engine.error);
  for (const u of errors) {
    const e = u.status!.engine.error!;
    if (u.status!.engine.state === 'retrying') {
      out.push(`${u.unit}: handler ${e.handler ?? '(none)'} failed on ${e.event} (attempt ${e.attempts}), retrying: ${e.message}`);
      continue;
    }
    out.push(`${u.unit}: error in handler ${e.handler ?? '(none)'} on ${e.event}, ${e.attempts} attempt(s): ${e.message}\n  fix the cause, then 'rhizome resolve ${u.unit}' (or --skip to drop the event)`);
  }
  return out.join('\n');
}

export function registerInspect(program: Command, globals: () => GlobalOptions): void {
  program
    .command('status')
    .description('services, units, workload status, relations and errors')
    .action(async () => {
      const g = globals();
      const report = await collectStatus(g);
      if (g.json) printJson(report);
      else process.stdout.write(`${renderStatus(report)}\n`);
    });

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
