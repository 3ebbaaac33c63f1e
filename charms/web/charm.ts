/**
 * web: a small real HTTP server (node:http, in the agent's process) that
 * answers every request with its unit name, offered to load balancers over
 * the `http` interface. `stop` closes the server when the agent stops.
 */
import { defineCharm } from '@rhizome/agent';
import { http } from '@rhizome-charms/kit';
import { DEFAULT_WEB_CONFIG, webHandlers } from './src/handlers';
import { stopServer } from './src/server';

export default defineCharm({
  metadata: {
    name: 'web',
    description: 'HTTP server that answers with its unit name',
    provides: { website: { interface: 'http' } },
  },
  interfaces: [http],
  config: DEFAULT_WEB_CONFIG,
  handlers: webHandlers,
  stop: (unit) => stopServer(unit.dir),
});
