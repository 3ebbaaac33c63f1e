import { internalEvent, type Engine, type Json } from '@rhizome/engine';
import type { GossipNode, Member } from '@rhizome/gossip';
import type { Logger } from '../log/logger';
import { workloadOf } from './views';

/**
 * What the mesh asks of this unit: every operator user event (not the
 * agents' own `rz.` ones) becomes an engine run raising `user.<name>`; every
 * operator query is answered with this unit's state; membership changes are
 * logged. Returns the unsubscribes.
 */
export function routeMeshEvents(node: GossipNode, engine: Engine, unit: { readonly unit: string; readonly service: string }, log: Logger): Array<() => void> {
  const offs = [
    node.on('user-event', (e) => {
      if (e.name.startsWith('rz.')) return;
      let payload: Json | undefined;
      try {
        payload = e.payload === undefined || e.payload === null ? undefined : (JSON.parse(JSON.stringify(e.payload)) as Json);
      } catch {
        payload = undefined;
      }
      engine.submit(internalEvent(`user.${e.name}`, payload)).catch((err: unknown) => log.debug({ err, event: e.name }, 'user event run did not commit'));
    }),
    node.onQuery('*', (q) => (q.name.startsWith('rz.') ? undefined : { unit: unit.unit, service: unit.service, state: engine.status().state, workload: workloadOf({ engine }) ?? null })),
  ];
  for (const ev of ['member-join', 'member-failed', 'member-leave'] as const) {
    offs.push(node.on(ev, (m: Member) => log.info({ member: m.name, status: m.status }, `mesh: ${ev.slice(7)} ${m.name}`)));
  }
  return offs;
}
