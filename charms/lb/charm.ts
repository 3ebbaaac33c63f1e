/**
 * lb: an nginx load balancer in front of the related web units. It wraps an
 * Ansible playbook (playbook/site.yml, template playbook/templates/
 * nginx.conf.j2) that renders the upstream from the live `backends` and
 * starts or reloads the unit's own nginx master (`nginx -p <unit dir>`, its
 * pid file and logs in the unit dir, listening on the `port` option).
 * If that nginx dies, the watched pid file disappears and the charm starts
 * it again. `stop` asks that nginx to quit. nginx daemonizes (its own
 * session), so a SIGKILLed agent leaves it running: `workloads` declares it
 * by its pid file, and `rhizome destroy` / `stop` end it once the agent is gone.
 */
import { defineCharm } from '@rhizome/agent';
import { http } from '@rhizome-charms/kit';
import { DEFAULT_LB_CONFIG, parseLbConfig } from './src/config';
import { lbHandlers } from './src/handlers';
import { nginxFiles, nginxWorkload, stopNginx } from './src/nginx';

export default defineCharm({
  metadata: {
    name: 'lb',
    description: 'nginx in front of the related web units, configured by an Ansible playbook',
    requires: { backends: { interface: 'http' } },
  },
  interfaces: [http],
  config: DEFAULT_LB_CONFIG,
  handlers: (unit) => lbHandlers(unit),
  // nginx removes its pid file when it exits: the change restarts it (restart-nginx).
  watch: (unit) => [nginxFiles(unit.dir).pid],
  stop: (unit) => stopNginx(unit.dir, parseLbConfig(unit.config).nginxBin),
  workloads: (unit) => [nginxWorkload(unit.dir)],
});
