/**
 * The operator's calls into the mesh, as Serf makes them: a user event to
 * every member, and a query whose acks and answers come back. Names are
 * checked here (letters, digits, ".", "_", "-"; the `rz.` prefix is the
 * agents' own) so a bad name is a 400 before anything is sent.
 */
import type { Json } from '@rhizome/engine';
import type { GossipNode } from '@rhizome/gossip';
import { AgentError } from '../errors';
import type { QueryStreamEvent } from './api';

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$/;

function checkName(kind: 'event' | 'query', name: unknown): asserts name is string {
  if (typeof name !== 'string' || !NAME.test(name) || name.startsWith('rz.')) {
    throw new AgentError('AGENT_ERR_BAD_REQUEST', `${kind} name ${JSON.stringify(name)} must be letters, digits, ".", "_", "-" (not starting with "rz.")`);
  }
}

/** Alive or suspect members' names, this one included. */
export function liveMemberNames(node: GossipNode): string[] {
  return node
    .members()
    .filter((m) => m.status === 'alive' || m.status === 'suspect')
    .map((m) => m.name);
}

/** Serf's user event: to every member (this one included); each raises `user.<name>`. */
export function sendUserEvent(node: GossipNode, name: string, payload: Json | undefined): { name: string; ltime: number; queuedTo: number } {
  checkName('event', name);
  const e = node.sendEvent(name, payload ?? null);
  // Serf reports the members an event was queued for: the live ones now (this one included); gossip carries it on.
  return { name: e.name, ltime: e.ltime, queuedTo: liveMemberNames(node).length };
}

/** A query's acks and responses once it is over. */
export function query(node: GossipNode, name: string, payload: Json | undefined, timeoutMs: number | undefined): Promise<{ acks: readonly string[]; responses: readonly { from: string; payload: unknown }[] }> {
  checkName('query', name);
  return node.query(name, payload ?? null, { requestAck: true, ...(timeoutMs !== undefined ? { timeout: timeoutMs } : {}) }).done;
}

/**
 * A query whose acks and responses are yielded as they arrive, then a
 * `done` with totals. It ends at the timeout, or as soon as every member
 * alive when it started has responded (no waiting out the timeout for
 * answers that are all in).
 */
export function queryStream(node: GossipNode, name: string, payload: Json | undefined, timeoutMs: number | undefined): AsyncGenerator<QueryStreamEvent> {
  // Checked before the stream starts, so a bad name is a 400, not a stream cut short.
  checkName('query', name);
  return queryEvents(node, name, payload, timeoutMs);
}

async function* queryEvents(node: GossipNode, name: string, payload: Json | undefined, timeoutMs: number | undefined): AsyncGenerator<QueryStreamEvent> {
  const started = Date.now();
  const expected = new Set(liveMemberNames(node));
  const handle = node.query(name, payload ?? null, { requestAck: true, ...(timeoutMs !== undefined ? { timeout: timeoutMs } : {}) });
  const responded = new Set<string>();
  let acks = 0;
  try {
    for await (const e of handle) {
      if (e.type === 'ack') {
        acks++;
        yield { type: 'ack', from: e.from, ms: Date.now() - started };
        continue;
      }
      responded.add(e.from);
      yield { type: 'response', from: e.from, payload: e.payload as Json, ms: Date.now() - started };
      if ([...expected].every((m) => responded.has(m))) handle.close();
    }
  } finally {
    handle.close();
  }
  yield { type: 'done', acks, responses: responded.size, members: expected.size, ms: Date.now() - started, complete: [...expected].every((m) => responded.has(m)) };
}

