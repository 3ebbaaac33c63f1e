/**
 * Natural order for names that end in numbers: `datanode-2` before
 * `datanode-10`, so lists in workload files read the way a person counts.
 */

/**
 * Made on first use, not at import: constructing an `Intl.Collator` pages in
 * ~2 MB of ICU collation data, resident for the life of every agent whose
 * charm imports the kit, including those (a datanode) that never sort.
 */
let collator: Intl.Collator | undefined;

/** Sorted copy in natural order, without duplicates. */
export function naturalSort(items: Iterable<string>): string[] {
  collator ??= new Intl.Collator('en', { numeric: true, sensitivity: 'variant' });
  const c = collator;
  return [...new Set(items)].sort((a, b) => c.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** A unit name as a hostname-like label: `hadoop-datanode/3` → `hadoop-datanode-3`. */
export function unitLabel(unit: string): string {
  return unit.replace(/\//g, '-');
}
