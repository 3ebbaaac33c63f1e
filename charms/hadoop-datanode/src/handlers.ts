/**
 * The datanode's handlers.
 *
 *   install             (start)                  make the data dir; blocked until a namenode shows up
 *   publish-datanode    namenode joined           publish address and hostname
 *   configure           namenode available        render core-site.xml / hdfs-site.xml, status active
 *   wait-for-namenode   namenode not available    status blocked: waiting for namenode
 *
 * `configure` and `wait-for-namenode` are fact-only: they depend on the
 * relation state of `namenode`, so any change of it (a namenode's new data,
 * its departure, the relation broken) makes whichever of them holds due
 * again, and the status always describes the current relation.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { unitLabel, writeFileAtomic, dfsSlave } from '@rhizome-charms/kit';
import type { UnitContext } from '@rhizome/agent';
import { all, fact, not, relationFact, type HandlerSpec } from '@rhizome/engine';
import { relation } from '@rhizome/relations';
import { FILES, defaultFS, renderCoreSite, renderHdfsSite } from './render';

/** The endpoint that relates to the namenode. */
export const NAMENODE_ENDPOINT = 'namenode';

/** What `status` says while no namenode is available. */
export const WAITING_FOR_NAMENODE = 'waiting for namenode';

/**
 * The name this datanode goes by in the namenode's `workers` and its own
 * `dfs.datanode.hostname`: it must resolve on the other machines, so it is
 * the charm option `hostname` when set (a DNS name), else the unit's
 * advertised address. On loopback every unit shares 127.0.0.1, so a local
 * deployment keeps the unit label (`datanode-0`) to tell them apart.
 */
export function datanodeHostname(unit: Pick<UnitContext, 'unit' | 'address' | 'config'>): string {
  const configured = unit.config['hostname'];
  if (typeof configured === 'string' && configured !== '') return configured;
  return isLoopbackAddress(unit.address) ? unitLabel(unit.unit) : unit.address;
}

function isLoopbackAddress(address: string): boolean {
  return address === 'localhost' || address === '::1' || address.startsWith('127.');
}

export function datanodeHandlers(unit: UnitContext): HandlerSpec[] {
  const hostname = datanodeHostname(unit);
  return [
    {
      name: 'install',
      atStartup: true,
      async run(ctx) {
        await mkdir(join(unit.dir, 'data'), { recursive: true });
        ctx.set('hdfs.installed');
      },
    },
    {
      name: 'publish-datanode',
      when: all(fact('hdfs.installed'), relationFact(NAMENODE_ENDPOINT, 'joined')),
      run(ctx) {
        relation(ctx, NAMENODE_ENDPOINT, dfsSlave.requirer).publish({ address: unit.address, hostname });
      },
    },
    {
      name: 'configure',
      when: all(fact('hdfs.installed'), relationFact(NAMENODE_ENDPOINT, 'available')),
      async run(ctx) {
        const [nn] = relation(ctx, NAMENODE_ENDPOINT, dfsSlave.requirer).all();
        if (!nn) return; // `available` held when queued; unreachable unless the state changed under us
        const wrote = [
          (await writeFileAtomic(join(unit.dir, FILES.coreSite), renderCoreSite(nn.data))) ? FILES.coreSite : undefined,
          (await writeFileAtomic(join(unit.dir, FILES.hdfsSite), renderHdfsSite(unit.dir, hostname, nn.data))) ? FILES.hdfsSite : undefined,
        ].filter((f) => f !== undefined);
        if (wrote.length > 0) ctx.note(`wrote ${wrote.join(', ')}`);
        ctx.set('hdfs.namenode', defaultFS(nn.data));
        ctx.setStatus('active', `datanode ${hostname} of ${defaultFS(nn.data)} (${nn.data.clustername})`);
      },
    },
    {
      name: 'wait-for-namenode',
      when: all(fact('hdfs.installed'), not(relationFact(NAMENODE_ENDPOINT, 'available'))),
      run(ctx) {
        ctx.clear('hdfs.namenode');
        ctx.setStatus('blocked', WAITING_FOR_NAMENODE);
      },
    },
  ];
}
