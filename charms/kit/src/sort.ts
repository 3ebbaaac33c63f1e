/**
 * Natural order for names that end in numbers: `datanode-2` before
 * `datanode-10`, so lists in workload files read the way a person counts.
 */
const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'variant' });

/** Sorted copy in natural order, without duplicates. */
export function naturalSort(items: Iterable<string>): string[] {
  return [...new Set(items)].sort((a, b) => collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** A unit name as a hostname-like label: `hadoop-datanode/3` → `hadoop-datanode-3`. */
export function unitLabel(unit: string): string {
  return unit.replace(/\//g, '-');
}
