/**
 * zookeeper: a real Apache ZooKeeper ensemble, one server per unit, from
 * Debian's `zookeeper` package (`scripts/ensure-apt.sh zookeeper
 * default-jre-headless`). The peers endpoint `ensemble` forms and grows it
 * with ZooKeeper's dynamic reconfiguration (see src/handlers.ts); clients
 * relate to `clients` (interface `zookeeper`) and receive each server's
 * client address. Each server runs in its own session with its files under
 * the unit's dir (zk/), on high ports (bases + unit number); the charm
 * declares it as a workload so it never outlives its unit, and stops it when
 * the agent stops. Status shows the server's real role (`srvr`).
 */
import { defineCharm } from '@rhizome/agent';
import { DEFAULT_ZOOKEEPER_CONFIG } from './src/config';
import { zookeeperHandlers } from './src/handlers';
import { zookeeper, zookeeperEnsemble } from './src/interfaces';
import { stopServer, zkFiles, zookeeperWorkload } from './src/server';

export default defineCharm({
  metadata: {
    name: 'zookeeper',
    description: 'Apache ZooKeeper ensemble (real servers, dynamic reconfiguration)',
    provides: { clients: { interface: 'zookeeper' } },
    peers: { ensemble: { interface: 'zookeeper-ensemble' } },
  },
  config: DEFAULT_ZOOKEEPER_CONFIG,
  interfaces: [zookeeperEnsemble, zookeeper],
  handlers: zookeeperHandlers,
  // ZooKeeper writes currentEpoch when a quorum forms or a new leader is elected: refresh the role then.
  watch: (unit) => [zkFiles(unit.dir).currentEpoch],
  stop: (unit) => stopServer(unit.dir),
  workloads: (unit) => [zookeeperWorkload(unit.dir)],
});
