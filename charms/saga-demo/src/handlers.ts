/**
 * saga-demo: provisioning a site is three external changes, one handler
 * each, chained by events inside one run (the saga):
 *
 *   create-site-dir   event user.provision   mkdir sites/<site>              compensate: remove it (if this run created it)
 *   write-index       event site.dir-ready   write sites/<site>/index.html   compensate: restore what was there
 *   register-site     event site.written     add <site> to the registry      compensate: remove the entry
 *   activate-site     event site.registered  record the fact sites.<site>, status
 *
 * `user.provision` is what `rhizome event provision '{"site":"blog"}'`
 * raises on every agent of the deployment.
 *
 * If any step throws, the engine rolls the run back (no fact survives) and
 * then calls the compensate step of every handler that had completed, in
 * reverse order, so the external world is as it was before the run. A step
 * that fails undoes its own partial work before throwing (register-site
 * writes the registry in one atomic rename, so it has none).
 *
 * What a compensate step must undo is remembered per run (by run id) when
 * the step runs; compensation happens in the same process, right after the
 * failure. A crash in the middle of a run leaves no memo: the retry after
 * restart finds the directory and file already there and reuses them, which
 * is why every step is idempotent.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { UnitContext } from '@rhizome/agent';
import { event, type HandlerSpec, type Json } from '@rhizome/engine';
import { parseProvision, ProvisionError, type ProvisionRequest } from './provision';
import { readRegistry, writeRegistry } from './registry';

export const DEFAULT_SAGA_CONFIG = Object.freeze({
  /** The registry file (relative to the unit's dir, or absolute to share one between units). */
  registry: 'registry.json',
  /** How many sites the registry accepts; the next registration fails (and is compensated). */
  'max-sites': 3,
}) satisfies Record<string, Json>;

interface Undo {
  dirCreated?: string;
  /** index.html path and its previous content (undefined: it did not exist). */
  index?: { path: string; previous: string | undefined };
  registered?: string;
}

export function sagaHandlers(unit: UnitContext): HandlerSpec[] {
  const c: Record<string, Json> = { ...DEFAULT_SAGA_CONFIG, ...unit.config };
  const maxSites = c['max-sites'];
  const registryOpt = c['registry'];
  if (typeof maxSites !== 'number' || !Number.isInteger(maxSites) || maxSites < 0) throw new Error(`saga-demo option "max-sites" must be a non-negative integer, got ${JSON.stringify(maxSites)}`);
  if (typeof registryOpt !== 'string' || registryOpt === '') throw new Error(`saga-demo option "registry" must be a file path, got ${JSON.stringify(registryOpt)}`);
  const registryFile = isAbsolute(registryOpt) ? registryOpt : join(unit.dir, registryOpt);
  const siteDir = (site: string): string => join(unit.dir, 'sites', site);
  const undo = new Map<string, Undo>();
  const memo = (runId: string): Undo => {
    let u = undo.get(runId);
    if (!u) undo.set(runId, (u = {}));
    return u;
  };
  const request = (payload: Json | undefined): ProvisionRequest => parseProvision(payload);

  return [
    {
      name: 'create-site-dir',
      when: event('user.provision'),
      async run(ctx) {
        const req = request(ctx.event?.payload);
        const dir = siteDir(req.site);
        const created = await mkdir(dir, { recursive: true });
        if (created !== undefined) memo(ctx.runId).dirCreated = dir;
        ctx.note(created !== undefined ? `created ${dir}` : `${dir} already there`);
        ctx.raise('site.dir-ready', req as unknown as Json);
      },
      async compensate(ctx) {
        const dir = undo.get(ctx.runId)?.dirCreated;
        undo.delete(ctx.runId);
        if (dir === undefined) return;
        await rm(dir, { recursive: true, force: true });
        ctx.note(`removed ${dir}`);
      },
    },
    {
      name: 'write-index',
      when: event('site.dir-ready'),
      async run(ctx) {
        const req = request(ctx.event?.payload);
        const path = join(siteDir(req.site), 'index.html');
        const previous = await readFile(path, 'utf8').catch(() => undefined);
        memo(ctx.runId).index = { path, previous };
        await writeFile(path, req.content);
        ctx.raise('site.written', req as unknown as Json);
      },
      async compensate(ctx) {
        const index = undo.get(ctx.runId)?.index;
        if (!index) return;
        if (index.previous === undefined) await rm(index.path, { force: true });
        else await writeFile(index.path, index.previous);
        ctx.note(index.previous === undefined ? `removed ${index.path}` : `restored ${index.path}`);
      },
    },
    {
      name: 'register-site',
      when: event('site.written'),
      async run(ctx) {
        const req = request(ctx.event?.payload);
        const registry = await readRegistry(registryFile);
        const entry = registry.sites[req.site];
        if (entry === undefined) {
          const count = Object.keys(registry.sites).length;
          if (count >= maxSites) {
            throw new ProvisionError('SAGA_ERR_REGISTRY_FULL', `registry ${registryFile} is full (${count} of max-sites ${maxSites}); remove a site or raise the max-sites option, then resolve`);
          }
          await writeRegistry(registryFile, { sites: { ...registry.sites, [req.site]: { unit: unit.unit, path: siteDir(req.site) } } });
          memo(ctx.runId).registered = req.site;
        }
        ctx.raise('site.registered', req as unknown as Json);
      },
      async compensate(ctx) {
        const site = undo.get(ctx.runId)?.registered;
        if (site === undefined) return;
        const registry = await readRegistry(registryFile);
        const { [site]: _removed, ...rest } = registry.sites;
        await writeRegistry(registryFile, { sites: rest });
        ctx.note(`unregistered ${site}`);
      },
    },
    {
      name: 'activate-site',
      when: event('site.registered'),
      run(ctx) {
        const req = request(ctx.event?.payload);
        if (req.failAt === 'activate') throw new ProvisionError('SAGA_ERR_INJECTED', `activating ${req.site} failed (failAt: "activate" was requested)`);
        ctx.set(`sites.${req.site}`, { path: siteDir(req.site) });
        const n = ctx.keys('sites.').length;
        ctx.setStatus('active', `${n} site${n === 1 ? '' : 's'}: ${ctx.keys('sites.').map((k) => k.slice('sites.'.length)).join(', ')}`);
        undo.delete(ctx.runId);
      },
    },
  ];
}
