/**
 * The README's main job. For now: the reactive engine on a small HDFS-like
 * charm, showing queueing, retest, a rollback and the run reports.
 */
import { all, Engine, event, fact, factsOf, not, type HandlerSpec, type RunReport } from '@rhizome/engine';

let failNext = true;
const handlers: HandlerSpec[] = [
  { name: 'install-hdfs', when: not(fact('hdfs.installed')), run: (ctx) => ctx.set('hdfs.installed') },
  {
    name: 'config-changed',
    when: event('config.changed'),
    run: (ctx) => {
      const payload = ctx.event?.payload as { port?: number } | undefined;
      if (payload?.port !== undefined) ctx.set('config.port', payload.port);
    },
  },
  {
    name: 'write-core-site',
    when: all(fact('hdfs.installed'), fact('config.port')),
    run: (ctx) => {
      if (failNext) {
        failNext = false;
        throw new Error('disk full while writing core-site.xml');
      }
      ctx.set('hdfs.configured', `hdfs://namenode:${String(ctx.get('config.port'))}`);
    },
  },
];

function show(r: RunReport): void {
  console.log(`run ${r.runId} for ${r.eventLabel} (attempt ${r.attempt}): ${r.outcome}${r.error ? ` — ${r.error.message}` : ''}`);
  for (const s of r.steps) console.log(`  ${s.outcome === 'ok' ? '✓' : '✗'} ${s.handler}  queued by ${s.queuedBy}  because [${s.because.join(', ')}]  changed [${s.factsChanged.join(', ')}]`);
}

const engine = new Engine({ handlers, retry: { baseMs: 50 } });
engine.onReport(show);
await engine.start();
await engine.submit({ kind: 'internal', name: 'config.changed', payload: { port: 8020 } });
console.log('facts:', factsOf(engine.knowledge));
await engine.stop();
