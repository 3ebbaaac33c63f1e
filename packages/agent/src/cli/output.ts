/**
 * How the CLI talks to people and scripts: tables (cli-table3) for people,
 * `--json` for scripts, one updating progress line on a TTY (plain lines
 * otherwise), and errors as `error: <message>` with exit code 1.
 */
import Table from 'cli-table3';

export function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({ head, style: { head: [], border: [] }, chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' } });
  for (const r of rows) t.push(r.map(String));
  return t.toString();
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Progress: a single rewritten line on a TTY; otherwise a plain line when
 * the state (`key`, default the text) changes, and at most every 5 s while
 * it does not, so logs of scripted runs stay short.
 */
export class Progress {
  private last = '';
  private lastKey = '';
  private lastAt = 0;
  private readonly tty: boolean;
  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.tty = stream.isTTY === true;
  }
  update(text: string, key: string = text): void {
    if (this.tty) {
      const cols = this.stream.columns ?? 100;
      this.stream.write(`\r\x1b[2K${text.slice(0, cols - 1)}`);
    } else if (key !== this.lastKey || Date.now() - this.lastAt > 5_000) {
      this.stream.write(`${text}\n`);
      this.lastKey = key;
      this.lastAt = Date.now();
    }
    this.last = text;
  }
  done(text?: string): void {
    if (this.tty && this.last !== '') this.stream.write('\r\x1b[2K');
    if (text !== undefined) this.stream.write(`${text}\n`);
    this.last = '';
    this.lastKey = '';
  }
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}
