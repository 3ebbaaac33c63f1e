/**
 * How a run tells a cycle from progress, and how it names what went round:
 * what one execution of a handler saw, its fingerprint, and the wording of
 * reads, tokens and repeating handlers in a non-convergence report.
 */
import { describeEvent, type EngineEvent } from '../events';

/** What one execution of a handler saw: the first value of each read, and the event that queued it. */
export interface Seen {
  readonly event: EngineEvent | undefined;
  readonly reads: Map<string, unknown>;
  fingerprint?: string;
}

export function ordinal(n: number): string {
  const s = n % 100 >= 11 && n % 100 <= 13 ? 'th' : n % 10 === 1 ? 'st' : n % 10 === 2 ? 'nd' : n % 10 === 3 ? 'rd' : 'th';
  return `${n}${s}`;
}

/** Computed only for handlers that execute more than once in a run: values are frozen, so the references kept are what was read. */
export function fingerprint(s: Seen): string {
  if (s.fingerprint === undefined) {
    const reads = [...s.reads].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    s.fingerprint = JSON.stringify([s.event === undefined ? null : [describeEvent(s.event), s.event.payload ?? null], reads]);
  }
  return s.fingerprint;
}

export function describeReads(reads: Map<string, unknown>): string {
  const parts: string[] = [];
  for (const [t, v] of reads) {
    if (parts.length === 5) {
      parts.push('...');
      break;
    }
    const text = JSON.stringify(v) ?? 'unset';
    parts.push(`${describeToken(t)} = ${text.length > 40 ? `${text.slice(0, 37)}...` : text}`);
  }
  return parts.length > 0 ? parts.join(', ') : 'nothing read';
}

/** How a dependency token reads in a report: a fact key, `relation X`, or `keys(prefix)`. */
export function describeToken(t: string): string {
  if (t.startsWith('@rel/')) return `relation ${t.slice(5)} changed`;
  if (t.startsWith('@keys/')) return `keys(${t.slice(6) === '' ? '' : `'${t.slice(6)}'`}) changed`;
  return `${t} changed`;
}

export function describeCycle(executed: readonly string[], queued: readonly string[]): string {
  const window = executed.slice(-100);
  const counts = new Map<string, number>();
  for (const n of window) counts.set(n, (counts.get(n) ?? 0) + 1);
  const repeating = [...counts].filter(([, c]) => c > 1).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const names = repeating.length > 0 ? repeating.map(([n, c]) => `${n} (${c}× in the last ${window.length})`) : queued.slice(0, 10);
  return names.join(', ');
}
