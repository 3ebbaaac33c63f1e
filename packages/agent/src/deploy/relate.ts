/**
 * `rhizome relate` / `unrelate`, and the relations of a deploy: asked of a
 * live unit, which records the relation in the mesh for every unit.
 */
import { AgentError } from '../errors';
import { clientFor, liveUnits, type Deployment } from './deployment';

/** Asks a live unit to relate two endpoints; retries while the services are not all in its mesh view yet. */
export async function relate(d: Deployment, a: string, b: string, timeoutMs = 30_000, remove = false): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const live = liveUnits(d);
    if (live.length === 0) throw new AgentError('AGENT_ERR_NOT_RUNNING', `no unit of deployment "${d.name}" is running`);
    const target = live.find((u) => u.service === a.split(':')[0]) ?? live[0]!;
    try {
      const client = await clientFor(target);
      return await client.json('POST', remove ? '/unrelate' : '/relate', { a, b });
    } catch (err) {
      const text = (err as Error).message;
      const retriable = /is known to the mesh/.test(text);
      if (!retriable || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
