/**
 * The lb unit's handlers.
 *
 *   start-nginx          (start)                 read the live backends, run the playbook
 *   backends-<event>     joined, changed,         recompute the live web units into the
 *                        departed, broken         fact `lb.backends` (sorted by unit)
 *   configure-nginx      lb.backends              run the playbook unless that list is
 *                                                 already what nginx serves (`lb.rendered`)
 *   restart-nginx        file.changed nginx.pid   nginx exited behind our back (its pid file
 *                                                 went away): run the playbook, which starts it
 *   reconfigure-nginx    config.changed           `rhizome config lb port=N`: run the playbook
 *                                                 unless nginx already listens where the options say
 *
 * The playbook (playbook/site.yml) renders nginx.conf from the extra var
 * `backends`, starts or reloads the unit's nginx and reports with set_stats
 * what it rendered; the report becomes the facts `lb.upstream`,
 * `lb.nginx-pid` and `lb.rendered`. A playbook failure fails the run: it
 * rolls back, is retried with backoff, and shows in `status` with ansible's
 * message.
 */
import type { AnsiblePlaybookOptions, AnsibleResult, UnitContext } from '@rhizome/agent';
import { runAnsiblePlaybook } from '@rhizome/agent';
import { all, event, fact, jsonEqual, relationEvent, type HandlerContext, type HandlerSpec, type Json, type Transaction } from '@rhizome/engine';
import { relation } from '@rhizome/relations';
import { naturalSort, http } from '@rhizome-charms/kit';
import { parseLbConfig } from './config';
import { findNginx, nginxFiles, nginxPid, PLAYBOOK } from './nginx';

export const BACKENDS_ENDPOINT = 'backends';

/** A web unit nginx sends to. */
export interface Backend {
  readonly unit: string;
  readonly host: string;
  readonly port: number;
}

export interface LbDeps {
  /** How the playbook is run; the agent's executor unless a test injects another. */
  readonly runPlaybook?: (opts: AnsiblePlaybookOptions) => Promise<AnsibleResult>;
}

/** The related web units that published a valid address, sorted by unit name. */
export function liveBackends(tx: Transaction): Backend[] {
  const byUnit = new Map(relation(tx, BACKENDS_ENDPOINT, http.requirer).all().map(({ unit, data }) => [unit, { unit, host: data.host, port: data.port }]));
  return naturalSort(byUnit.keys()).map((u) => byUnit.get(u)!);
}

function stringList(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) {
    throw new Error(`the lb playbook reported ${what} = ${JSON.stringify(v)}, not a list of strings; check the set_stats task of playbook/site.yml`);
  }
  return v;
}

export function lbHandlers(unit: UnitContext, deps: LbDeps = {}): HandlerSpec[] {
  const cfg = parseLbConfig(unit.config);
  const runPlaybook = deps.runPlaybook ?? runAnsiblePlaybook;
  // Where nginx listens, as the options say: what a config change can move.
  const listenKey = `${unit.address}:${cfg.port}`;

  const configure = async (ctx: HandlerContext, backends: Backend[]): Promise<void> => {
    const nginxBin = await findNginx(cfg.nginxBin);
    const result = await runPlaybook({
      playbook: PLAYBOOK,
      timeoutMs: cfg.playbookTimeoutMs,
      extraVars: {
        config: { ...unit.config },
        unit_name: unit.unit,
        service_name: unit.service,
        addresses: [unit.address],
        unit_dir: unit.dir,
        listen_host: unit.address,
        listen_port: cfg.port,
        nginx_bin: nginxBin,
        backends: backends.map((b) => ({ ...b })),
      },
    });
    const upstream = stringList(result.facts['upstream'], 'upstream');
    const pid = Number(result.facts['nginx_pid']);
    ctx.set('lb.upstream', upstream);
    if (Number.isInteger(pid) && pid > 0) ctx.set('lb.nginx-pid', pid);
    ctx.set('lb.rendered', backends as unknown as Json);
    ctx.set('lb.listen', listenKey);
    ctx.note(`nginx ${String(result.facts['action'] ?? 'configured')}: upstream [${upstream.join(', ')}]`);
    const listen = `http://${unit.address}:${cfg.port}/`;
    if (backends.length === 0) ctx.setStatus('waiting', `nginx on ${listen}: waiting for web units`);
    else ctx.setStatus('active', `nginx on ${listen} → ${backends.map((b) => b.unit).join(', ')}`);
  };

  const sync = (ctx: HandlerContext): void => {
    ctx.set('lb.backends', liveBackends(ctx) as unknown as Json);
  };

  return [
    {
      name: 'start-nginx',
      atStartup: true,
      async run(ctx) {
        sync(ctx);
        await configure(ctx, liveBackends(ctx));
      },
    },
    ...(['joined', 'changed', 'departed', 'broken'] as const).map((name): HandlerSpec => ({ name: `backends-${name}`, when: relationEvent(BACKENDS_ENDPOINT, name), run: sync })),
    {
      name: 'configure-nginx',
      when: fact('lb.backends'),
      async run(ctx) {
        const backends = (ctx.get<Json>('lb.backends') ?? []) as unknown as Backend[];
        if (jsonEqual(backends as unknown as Json, ctx.get('lb.rendered') ?? null) && ctx.get('lb.listen') === listenKey) return;
        await configure(ctx, backends);
      },
    },
    {
      // The handlers are built again with the new options before config.changed runs.
      name: 'reconfigure-nginx',
      when: all(event('config.changed'), fact('lb.rendered')),
      async run(ctx) {
        if (ctx.get('lb.listen') === listenKey) return;
        await configure(ctx, (ctx.get<Json>('lb.backends') ?? []) as unknown as Backend[]);
      },
    },
    {
      // The charm watches nginx.pid (see charm.ts): nginx removes it when it exits.
      name: 'restart-nginx',
      when: all(
        event('file.changed', (p) => typeof p === 'object' && p !== null && (p as { path?: unknown }).path === nginxFiles(unit.dir).pid),
        fact('lb.rendered'),
      ),
      async run(ctx) {
        if ((await nginxPid(unit.dir)) !== undefined) return; // a start or reload wrote it: nothing to do
        ctx.note('nginx is not running (its pid file went away): starting it again');
        await configure(ctx, (ctx.get<Json>('lb.backends') ?? []) as unknown as Backend[]);
      },
    },
  ];
}
