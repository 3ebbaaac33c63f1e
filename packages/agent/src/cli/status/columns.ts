/**
 * `rhizome status`'s borderless table: aligned columns measured as a
 * terminal shows them.
 */
import stringWidth from 'string-width';

/** Columns on a terminal: colour codes take no room, East Asian wide characters and emoji two cells. */
function cellWidth(text: string): number {
  // Plain printable ASCII (nearly every cell) is its length; only the rest pays for string-width's emoji pattern.
  return /^[\x20-\x7e]*$/.test(text) ? text.length : stringWidth(text);
}

/**
 * Rows (the first one the header) as juju status draws its sections, without
 * borders: each column as wide as its widest cell, cells a space apart with
 * a space of padding after each, trailing spaces trimmed. This is what
 * cli-table3 drew with empty borders (status.test.ts holds the two equal);
 * status no longer loads it, which was an eighth of the command's start-up.
 * A cell holding several lines makes its row that tall.
 */
export function borderless(rows: readonly (readonly string[])[]): string {
  const columns = Math.max(0, ...rows.map((r) => r.length));
  const table = rows.map((r) => Array.from({ length: columns }, (_, i) => (r[i] ?? '').split('\n')));
  const widths = Array.from({ length: columns }, (_, i) => Math.max(0, ...table.flatMap((r) => r[i]!.map(cellWidth))));
  const out: string[] = [];
  for (const r of table) {
    const height = Math.max(...r.map((lines) => lines.length));
    for (let l = 0; l < height; l++) {
      out.push(
        r
          .map((lines, i) => {
            const text = lines[l] ?? '';
            return text + ' '.repeat(widths[i]! - cellWidth(text) + 1);
          })
          .join(' ')
          .trimEnd(),
      );
    }
  }
  return out.join('\n');
}
