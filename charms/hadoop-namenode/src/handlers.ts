/**
 * The namenode's handlers.
 *
 *   install            (start)            make the name dir, render core-site.xml
 *   publish-namenode   datanode joined     publish namenodes/port/webhdfs-port/clustername
 *   datanodes-<event>  joined, changed,    recompute the live datanodes into the fact
 *                      departed, broken    `hdfs.workers` (sorted hostnames)
 *   write-workers      hdfs.workers        render `workers` and hdfs-site.xml, set status
 *
 * The invariant the tests check: after any run, `workers` lists exactly the
 * datanodes that are joined and have published a valid bag, sorted. The
 * relation events only recompute a fact; the file follows the fact, so a
 * run in which the list does not change writes nothing.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { naturalSort, unitLabel, writeFileAtomic, dfsSlave } from '@rhizome-charms/kit';
import type { UnitContext } from '@rhizome/agent';
import { all, fact, relationEvent, relationFact, type HandlerContext, type HandlerSpec, type Transaction } from '@rhizome/engine';
import { relation } from '@rhizome/relations';
import { parseNamenodeConfig } from './config';
import { FILES, defaultFS, renderCoreSite, renderHdfsSite, renderWorkers } from './render';

/** The endpoint datanodes relate to. */
export const DATANODE_ENDPOINT = 'datanode';

/**
 * The live datanodes as the namenode lists them, sorted: the hostname each
 * published (a name or address that resolves on the namenode's machine), else
 * its address; the unit label only if it published neither (never from our
 * datanode charm).
 */
export function liveDatanodes(tx: Transaction): string[] {
  return naturalSort(relation(tx, DATANODE_ENDPOINT, dfsSlave.provider).all().map(({ unit, data }) => data.hostname ?? (data.address || unitLabel(unit))));
}

export function namenodeHandlers(unit: UnitContext): HandlerSpec[] {
  const cfg = parseNamenodeConfig(unit.config);
  // Where the namenode is reached from other machines: the hostname option, else the advertised address.
  const host = cfg.hostname || unit.address;
  const syncWorkers = (ctx: HandlerContext): void => {
    ctx.set('hdfs.workers', liveDatanodes(ctx));
  };
  return [
    {
      name: 'install',
      atStartup: true,
      async run(ctx) {
        await mkdir(join(unit.dir, 'name'), { recursive: true });
        if (await writeFileAtomic(join(unit.dir, FILES.coreSite), renderCoreSite(host, cfg))) ctx.note(`wrote ${FILES.coreSite}`);
        ctx.set('hdfs.installed');
        ctx.set('hdfs.fs', defaultFS(host, cfg));
        syncWorkers(ctx);
      },
    },
    {
      name: 'publish-namenode',
      when: all(fact('hdfs.installed'), relationFact(DATANODE_ENDPOINT, 'joined')),
      run(ctx) {
        relation(ctx, DATANODE_ENDPOINT, dfsSlave.provider).publish({
          namenodes: [host],
          port: cfg.port,
          'webhdfs-port': cfg.webhdfsPort,
          clustername: cfg.clustername,
        });
      },
    },
    ...(['joined', 'changed', 'departed', 'broken'] as const).map(
      (name): HandlerSpec => ({ name: `datanodes-${name}`, when: all(relationEvent(DATANODE_ENDPOINT, name), fact('hdfs.installed')), run: syncWorkers }),
    ),
    {
      name: 'write-workers',
      when: all(fact('hdfs.installed'), fact('hdfs.workers')),
      async run(ctx) {
        const workers = ctx.get<string[]>('hdfs.workers') ?? [];
        if (await writeFileAtomic(join(unit.dir, FILES.workers), renderWorkers(workers))) ctx.note(`workers: ${workers.join(', ') || '(none)'}`);
        await writeFileAtomic(join(unit.dir, FILES.hdfsSite), renderHdfsSite(unit.dir, host, cfg, workers.length));
        const n = workers.length;
        ctx.setStatus('active', `namenode ${defaultFS(host, cfg)} (${cfg.clustername}): ${n === 0 ? 'no datanodes yet' : `${n} datanode${n === 1 ? '' : 's'}`}`);
      },
    },
  ];
}
