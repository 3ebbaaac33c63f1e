/**
 * lb: an nginx load balancer in front of the related web units. It wraps an
 * Ansible playbook (playbook/site.yml, template playbook/templates/
 * nginx.conf.j2) that renders the upstream from the live `backends` and
 * starts or reloads the unit's own nginx master (`nginx -p <unit dir>`, its
 * pid file and logs in the unit dir, listening on the `port` option).
 * `stop` asks that nginx to quit.
 */
import { defineCharm } from '@rhizome/agent';
import { DEFAULT_LB_CONFIG, parseLbConfig } from './src/config';
import { lbHandlers } from './src/handlers';
import { stopNginx } from './src/nginx';

export default defineCharm({
  metadata: {
    name: 'lb',
    description: 'nginx in front of the related web units, configured by an Ansible playbook',
    requires: { backends: { interface: 'http' } },
  },
  config: DEFAULT_LB_CONFIG,
  handlers: (unit) => lbHandlers(unit),
  stop: (unit) => stopNginx(unit.dir, parseLbConfig(unit.config).nginxBin),
});
