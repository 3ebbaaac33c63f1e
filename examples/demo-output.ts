/** How the demos print: bold steps, dim details, one progress line rewritten in place on a terminal. */
import type { ConvergenceCheck } from '@rhizome/agent';

const tty = process.stdout.isTTY === true;

export const bold = (s: string): string => (tty ? `\x1b[1m${s}\x1b[0m` : s);
export const dim = (s: string): string => (tty ? `\x1b[2m${s}\x1b[0m` : s);
export const secs = (ms: number): string => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

/**
 * One progress line: rewritten in place on a terminal; in a log (not a
 * terminal) printed only when it says something new, timings aside.
 */
export class Progress {
  private last = '';
  update(line: string): void {
    const key = line.replace(/[\d.]+ (ms|s)\b/g, '');
    if (tty) process.stdout.write(`\r\x1b[K  ${dim(line)}`);
    else if (key !== this.last) console.log(`  ${line}`);
    this.last = key;
  }
  done(): void {
    if (tty && this.last !== '') process.stdout.write('\r\x1b[K');
    this.last = '';
  }
}

export function describeCheck(c: ConvergenceCheck, elapsedMs: number): string {
  const head = `converging… ${secs(elapsedMs)}: ${c.live.length} live unit(s)`;
  return c.converged ? `${head}, all agree (confirming)` : `${head}, ${c.reasons.length} pending: ${c.reasons[0] ?? ''}`;
}
