import { describeThrown } from '../errors';
import type { CompensateContext, CompiledHandler } from '../handler';
import type { CompensationReport } from '../report';

export async function compensate(
  completed: readonly CompiledHandler[],
  base: Omit<CompensateContext, 'handler' | 'note'>,
): Promise<CompensationReport[]> {
  const reports: CompensationReport[] = [];
  for (let i = completed.length - 1; i >= 0; i--) {
    const h = completed[i]!;
    if (!h.spec.compensate) continue;
    const notes: string[] = [];
    try {
      await h.spec.compensate({ ...base, handler: h.name, note: (m) => notes.push(m) });
      reports.push({ handler: h.name, outcome: 'ok', notes });
    } catch (thrown) {
      // A failing compensation is reported, and the remaining ones still run:
      // stopping half-way would leave more external state behind.
      reports.push({ handler: h.name, outcome: 'failed', error: describeThrown(thrown), notes });
    }
  }
  return reports;
}
