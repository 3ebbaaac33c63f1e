/**
 * The web unit's handlers.
 *
 *   start-server      (start)            listen; the port becomes the fact `web.port`
 *   publish-website   website joined     publish host and port (http interface)
 *
 * Port choice: the `port` option if it is not 0, else the port this unit
 * used before (the fact survives restarts, so a load balancer's upstream
 * stays valid across an agent restart), else one the OS assigns.
 */
import { http } from '@rhizome-charms/kit';
import type { UnitContext } from '@rhizome/agent';
import { all, fact, relationFact, type HandlerSpec, type Json } from '@rhizome/engine';
import { relation } from '@rhizome/relations';
import { ensureServer } from './server';

export const WEBSITE_ENDPOINT = 'website';

export const DEFAULT_WEB_CONFIG = Object.freeze({
  /** Port to listen on; 0 = OS-assigned, remembered in the fact `web.port` and reused after a restart. */
  port: 0,
}) satisfies Record<string, Json>;

export class WebConfigError extends Error {
  readonly code = 'WEB_ERR_BAD_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'WebConfigError';
  }
}

export function parseWebConfig(raw: Readonly<Record<string, Json>>): { port: number } {
  const port = raw['port'] ?? DEFAULT_WEB_CONFIG.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new WebConfigError(`web option "port" must be 0 (any free port) or a port number up to 65535, got ${JSON.stringify(port)}`);
  }
  return { port };
}

export function webHandlers(unit: UnitContext): HandlerSpec[] {
  const cfg = parseWebConfig(unit.config);
  return [
    {
      name: 'start-server',
      atStartup: true,
      async run(ctx) {
        const remembered = ctx.get<number>('web.port');
        const want = cfg.port !== 0 ? cfg.port : typeof remembered === 'number' ? remembered : 0;
        const { host, port } = await ensureServer(unit.dir, unit.unit, unit.address, want);
        ctx.set('web.port', port);
        ctx.set('web.host', host);
        ctx.setStatus('active', `serving http://${host}:${port}/`);
      },
    },
    {
      name: 'publish-website',
      when: all(fact('web.port'), relationFact(WEBSITE_ENDPOINT, 'joined')),
      run(ctx) {
        relation(ctx, WEBSITE_ENDPOINT, http.provider).publish({ host: ctx.get<string>('web.host') ?? unit.address, port: ctx.get<number>('web.port')! });
      },
    },
  ];
}
