/**
 * `rhizome status`, the drawing half: pure functions from a `StatusSummary`
 * to text, one per `--format`:
 *   - `table`  sections like `juju status` (header, services, units,
 *              relations, errors, a legend), coloured when asked;
 *   - `plain`  the same rows without borders, colour or legend, columns
 *              aligned, headers on `#` lines: for grep and awk;
 *   - `json`, `yaml`  the summary itself (each unit keeps its full agent status).
 * Colour comes from picocolors (`createColors(enabled)`); whether to enable
 * it (a TTY, NO_COLOR) is the caller's decision, so these stay pure.
 */
import { createColors } from 'picocolors';
import { borderless } from './columns';
import type { StatusSummary } from './model';

export const STATUS_FORMATS = ['table', 'plain', 'json', 'yaml'] as const;
export type StatusFormat = (typeof STATUS_FORMATS)[number];

export interface RenderOptions {
  readonly format: StatusFormat;
  /** ANSI colours (table format only). */
  readonly color?: boolean;
  /** Shown in the header (the caller's clock: rendering stays pure). */
  readonly now?: Date;
}

type Colors = ReturnType<typeof createColors>;

/** The colour of a state word, as Juju paints them. */
function paint(c: Colors, state: string): string {
  switch (state) {
    case 'active':
    case 'idle':
    case 'joined':
      return c.green(state);
    case 'error':
    case 'down':
    case 'unreachable':
    case 'incompatible':
    case 'blocked':
      return c.red(state);
    case 'waiting':
    case 'maintenance':
    case 'running':
    case 'retrying':
    case 'pending':
      return c.yellow(state);
    default:
      return state;
  }
}

function box(head: string[], rows: string[][], c: Colors): string {
  return borderless([head.map((h) => c.bold(h)), ...rows]);
}

/** Aligned columns without borders; the header as a `#` line. */
function columns(head: string[], rows: string[][]): string {
  const all = [head.map((h, i) => (i === 0 ? `# ${h}` : h)), ...rows.map((r) => r.map((x) => (x === '' ? '-' : x)))];
  const widths = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((x, i) => (i === r.length - 1 ? x : x.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

const LEGEND =
  'Legend: * leader (the lowest-numbered live unit); Scale = units up/units; Agent = engine state (idle, running, retrying, error) or down; ' +
  "Workload = what the charm reports, 'error' while its engine is in error; Ports = gossip, control; Machine 'local' = this host's loopback; Version = the agent's release ('rhizome upgrade-model' moves units onto the installed one).";

function sections(s: StatusSummary, c: Colors, now: Date | undefined, draw: (head: string[], rows: string[][]) => string, plain: boolean): string[] {
  const out: string[] = [];
  const members = s.members ? `${s.members.alive}/${s.members.total}` : '?';
  const time = now ? now.toISOString().slice(11, 19) + 'Z' : '';
  out.push(draw(['Deployment', 'Members', ...(time ? ['Time'] : [])], [[s.deployment ?? '(one agent)', members, ...(time ? [time] : [])]]));
  out.push(draw(['Service', 'Charm', 'Status', 'Scale', 'Message'], s.services.map((x) => [x.name, x.charm, paint(c, x.status), `${x.up}/${x.scale}`, x.message])));
  out.push(
    draw(
      ['Unit', 'Agent', 'Workload', 'Address', 'Ports', 'Machine', 'Version', 'Message'],
      s.units.map((u) => [
        plain ? u.unit + (u.leader ? '*' : '') : u.unit + (u.leader ? c.bold('*') : ''),
        paint(c, u.agent),
        paint(c, u.workload),
        u.address,
        u.ports.join(','),
        u.machine,
        u.version,
        u.message,
      ]),
    ),
  );
  if (s.relations.length > 0) {
    out.push(draw(['Provider', 'Requirer', 'Interface', 'Type', 'State', 'Message'], s.relations.map((r) => [r.provider, r.requirer, r.interface, r.kind, paint(c, r.state), r.message])));
  }
  return out;
}

/** Security warnings, error lines, then charm warnings (a precondition on a fact nothing sets...). */
function errorLines(s: StatusSummary, c: Colors): string[] {
  // Agents started with --insecure off loopback (the JSON formats carry status.security).
  const insecure = s.units.filter((u) => u.status?.security?.insecure === true).map((u) => u.unit);
  const warnings =
    insecure.length === 0
      ? []
      : [`${c.yellow('insecure')}: ${insecure.join(', ')} gossip unencrypted (--insecure): anyone who reaches their gossip port can join the mesh; give every agent a keyring ('rhizome keygen') and restart them`];
  const charmWarnings = (s.warnings ?? []).map((w) => `${c.yellow(`${w.unit}: charm warning`)}: ${w.message}`);
  return [...warnings, ...meshSplitLines(s, c), ...unitErrors(s, c), ...charmWarnings];
}

/** A split mesh: which units see how many of the units that answered (the header's Members is one unit's view). */
function meshSplitLines(s: StatusSummary, c: Colors): string[] {
  if (!s.meshSplit) return [];
  const answering = s.units.filter((u) => u.status).length;
  const views = s.meshSplit.map((v) => `${v.unit} sees ${v.alive}`).join(', ');
  return [
    `${c.yellow('mesh split')}: of the ${answering} units answering, ${views} alive; units that do not see each other exchange no relation data ` +
      `until the network between their machines heals`,
  ];
}

function unitErrors(s: StatusSummary, c: Colors): string[] {
  return s.errors.map((e) =>
    e.state === 'retrying'
      ? `${e.unit}: handler ${e.handler} failed on ${e.event} (attempt ${e.attempts}), retrying: ${e.message}`
      : `${c.red(`${e.unit}: error`)} in handler ${e.handler} on ${e.event}, ${e.attempts} attempt(s): ${e.message}\n` +
        `  fix the cause, then 'rhizome resolve ${e.unit}' (or --skip to drop the event)`,
  );
}

/** Renders a status summary in one of the formats (pure; async only to load the YAML library when asked for YAML). */
export async function renderStatus(s: StatusSummary, opts: RenderOptions): Promise<string> {
  switch (opts.format) {
    case 'json':
      return JSON.stringify(s, null, 2);
    case 'yaml': {
      // Loaded for this format only: the YAML library is most of what a plain `status` would otherwise compile.
      const { stringify } = await import('yaml');
      return stringify(s, { lineWidth: 0, aliasDuplicateObjects: false }).trimEnd();
    }
    case 'plain': {
      const c = createColors(false);
      return [...sections(s, c, opts.now, columns, true), ...errorLines(s, c)].join('\n\n');
    }
    case 'table': {
      const c = createColors(opts.color === true);
      const errs = errorLines(s, c);
      return [...sections(s, c, opts.now, (h, r) => box(h, r, c), false), ...(errs.length > 0 ? [errs.join('\n')] : []), c.dim(LEGEND)].join('\n\n');
    }
  }
}

/** Whether to colour `stream`: a TTY, and NO_COLOR unset or empty (https://no-color.org); FORCE_COLOR forces it. */
export function wantsColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return false;
  if (env['FORCE_COLOR'] !== undefined && env['FORCE_COLOR'] !== '0') return true;
  return stream.isTTY === true;
}
