/**
 * saga-demo: provisions a site (directory, index.html, registry entry) on
 * the user event `provision` (raised as `user.provision`), one handler per
 * external step; when a later step fails, the earlier ones are undone by
 * their `compensate` steps (see src/handlers.ts).
 *
 *   rhizome event provision '{"site":"blog","content":"<h1>Blog</h1>"}'
 */
import { defineCharm } from '@rhizome/agent';
import { DEFAULT_SAGA_CONFIG, sagaHandlers } from './src/handlers';

export default defineCharm({
  metadata: { name: 'saga-demo', description: 'multi-step provisioning with compensating steps' },
  config: DEFAULT_SAGA_CONFIG,
  handlers: sagaHandlers,
});
