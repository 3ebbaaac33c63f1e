/**
 * Which handlers read which dependency tokens in their last successful run:
 * the inverse of the `seen` records in the knowledge base's handler
 * bookkeeping. With it, a change to a token looks only at the handlers that
 * read it (through preconditions or their context), so the retest cost stays
 * proportional to what changed, not to the number of handlers.
 *
 * Built once from the knowledge base when the engine starts, then updated
 * for the handlers each committed run executed.
 */
import type { KnowledgeBase } from '../knowledge-base';
import { shardGet } from './shards';

export class ReadIndex {
  private readonly byToken = new Map<string, Set<string>>();
  private readonly byHandler = new Map<string, readonly string[]>();

  static fromKnowledge(kb: KnowledgeBase, handlerNames: readonly string[]): ReadIndex {
    const index = new ReadIndex();
    index.refresh(kb, handlerNames);
    return index;
  }

  /** Re-reads the bookkeeping of these handlers from a committed knowledge base. */
  refresh(kb: KnowledgeBase, handlerNames: Iterable<string>): void {
    for (const name of handlerNames) {
      const bk = shardGet(kb.handlers, name);
      this.set(name, bk === undefined ? [] : Object.keys(bk.seen));
    }
  }

  readers(token: string): ReadonlySet<string> | undefined {
    return this.byToken.get(token);
  }

  hasReaders(token: string): boolean {
    return this.byToken.has(token);
  }

  private set(name: string, tokens: readonly string[]): void {
    const old = this.byHandler.get(name);
    if (old !== undefined) {
      for (const t of old) {
        const names = this.byToken.get(t);
        if (names === undefined) continue;
        names.delete(name);
        if (names.size === 0) this.byToken.delete(t);
      }
    }
    if (tokens.length === 0) {
      this.byHandler.delete(name);
      return;
    }
    this.byHandler.set(name, tokens);
    for (const t of tokens) {
      let names = this.byToken.get(t);
      if (names === undefined) this.byToken.set(t, (names = new Set()));
      names.add(name);
    }
  }
}
