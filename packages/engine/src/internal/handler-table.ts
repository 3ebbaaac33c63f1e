/**
 * Indexes over a charm's compiled handlers, built once:
 *   - by event key: which handlers an event activation can queue;
 *   - by dependency token: which handlers to look at when a fact (or an
 *     endpoint's relation state) changes.
 * With these, queueing and retesting cost grows with what changed and what
 * is queued, never with the number of handlers in the charm.
 */
import type { EngineEvent } from '../events';
import { START_EVENT } from '../events';
import { checkDeclared, type FactSchemas } from '../fact-schema';
import { compileHandlers, type CompiledHandler, type HandlerSpec } from '../handler';
import type { EventPrecondition } from '../preconditions';

export function eventKey(e: EngineEvent): string {
  return e.kind === 'internal' ? `i:${e.name}` : `r:${e.endpoint}:${e.name}`;
}

function preconditionEventKey(p: EventPrecondition): string {
  return p.kind === 'event' ? `i:${p.name}` : `r:${p.endpoint}:${p.name}`;
}

export class HandlerTable {
  readonly handlers: readonly CompiledHandler[];
  private readonly byEvent = new Map<string, CompiledHandler[]>();
  private readonly byToken = new Map<string, CompiledHandler[]>();
  private readonly named = new Map<string, CompiledHandler>();
  /** Handlers queued by facts alone (no event precondition, not atStartup-only). */
  readonly factOnly: readonly CompiledHandler[];

  constructor(specs: readonly HandlerSpec[], facts?: FactSchemas) {
    this.handlers = compileHandlers(specs);
    if (facts !== undefined) {
      for (const h of this.handlers) for (const t of h.pre.tokens) if (!t.startsWith('@')) checkDeclared(facts, t, h.name);
    }
    const factOnly: CompiledHandler[] = [];
    for (const h of this.handlers) {
      this.named.set(h.name, h);
      const key = h.atStartup ? `i:${START_EVENT}` : h.pre.event ? preconditionEventKey(h.pre.event) : undefined;
      if (key !== undefined) push(this.byEvent, key, h);
      else factOnly.push(h);
      for (const token of h.pre.tokens) push(this.byToken, token, h);
    }
    this.factOnly = factOnly;
  }

  byName(name: string): CompiledHandler | undefined {
    return this.named.get(name);
  }

  /** Handlers whose event precondition may match this event (payload tests still apply). */
  forEvent(e: EngineEvent): readonly CompiledHandler[] {
    return this.byEvent.get(eventKey(e)) ?? EMPTY;
  }

  /** Handlers whose fact preconditions read this dependency token. */
  forToken(token: string): readonly CompiledHandler[] {
    return this.byToken.get(token) ?? EMPTY;
  }
}

const EMPTY: readonly CompiledHandler[] = Object.freeze([]);

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
