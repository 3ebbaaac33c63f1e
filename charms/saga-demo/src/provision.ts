/**
 * The `provision` event's payload, parsed once at the boundary: it comes
 * from outside (`rhizome event provision '{"site":"blog",...}' (raised as user.provision)`).
 */
import type { Json } from '@rhizome/engine';

export interface ProvisionRequest {
  /** Site name: lowercase letters, digits, dashes (it becomes a directory name). */
  readonly site: string;
  /** The site's index.html. */
  readonly content: string;
  /**
   * Failure injection for demonstrations: make `activate-site` (the last
   * step) fail, to watch the earlier steps being compensated.
   */
  readonly failAt?: 'activate';
}

export class ProvisionError extends Error {
  readonly code: 'SAGA_ERR_BAD_REQUEST' | 'SAGA_ERR_REGISTRY_FULL' | 'SAGA_ERR_INJECTED';
  constructor(code: ProvisionError['code'], message: string) {
    super(message);
    this.name = 'ProvisionError';
    this.code = code;
  }
}

const SITE = /^[a-z][a-z0-9-]{0,62}$/;

export function parseProvision(payload: Json | undefined): ProvisionRequest {
  const bad = (why: string): never => {
    throw new ProvisionError('SAGA_ERR_BAD_REQUEST', `provision: ${why}; send e.g. {"site":"blog","content":"<h1>Blog</h1>"}`);
  };
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return bad(`payload must be an object, got ${JSON.stringify(payload)}`);
  const { site, content, failAt } = payload as Record<string, Json | undefined>;
  if (typeof site !== 'string' || !SITE.test(site)) return bad(`"site" must be lowercase letters, digits and dashes, got ${JSON.stringify(site)}`);
  if (content !== undefined && typeof content !== 'string') return bad(`"content" must be a string`);
  if (failAt !== undefined && failAt !== 'activate') return bad(`"failAt" may only be "activate", got ${JSON.stringify(failAt)}`);
  return { site, content: content ?? `<h1>${site}</h1>\n`, ...(failAt ? { failAt } : {}) };
}
