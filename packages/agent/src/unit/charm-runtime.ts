/**
 * The loaded charm as it runs in this unit: its context (config included),
 * its handlers as the engine calls them, its actions and its run-time
 * config. The engine holds wrappers that look the live build of each
 * handler up by name, so `rhizome config` rebuilds the handlers for the
 * new options without rebuilding the engine.
 */
import { getFact, internalEvent, type Engine, type HandlerContext, type HandlerSpec, type Json } from '@rhizome/engine';
import { actionEvent, actionHandlers, describeActions, readActionParams } from '../charm/actions';
import { describeConfig, planConfigChange } from '../charm/config-options';
import type { UnitContext } from '../charm/define';
import { buildHandlers, type LoadedCharm } from '../charm/load';
import { withStepLog } from '../executors/step-log';
import { runLogger, type Logger } from '../log/logger';
import type { ActionList, ActionOutcome, ConfigChange, ConfigView } from './api';
import { charmLogger } from './run-log';

/** The fact keeping the options an operator set at run time (they survive restarts). */
export const CONFIG_OVERRIDES_FACT = 'config.overrides';

/** Action results kept for runAction to pick up; more are dropped (oldest first). */
const MAX_ACTION_RESULTS = 64;
/** A background action's result is logged up to this many characters of JSON. */
const MAX_LOGGED_RESULT_CHARS = 4_096;

export interface CharmRuntimeInput {
  readonly charm: LoadedCharm;
  readonly unit: string;
  readonly service: string;
  readonly dir: string;
  readonly address: string;
  /** The options from the agent's config (over the charm's defaults). */
  readonly options: Readonly<Record<string, Json>>;
  /** Options an operator set at run time (the committed `config.overrides` fact); they win. */
  readonly overrides: Json | undefined;
  readonly log: Logger;
}

export class CharmRuntime {
  readonly charm: LoadedCharm;
  private ctx: UnitContext;
  private readonly log: Logger;
  /** The charm's handlers built for the current config, by name (the engine calls them through wrap). */
  private readonly live = new Map<string, HandlerSpec>();
  /** Action results by run id, from the action's handler until runAction picks them up. */
  private readonly actionResults = new Map<string, Json>();
  private currentRunLog: Logger | undefined;

  constructor(input: CharmRuntimeInput) {
    this.charm = input.charm;
    this.log = input.log;
    const overrides = isJsonObject(input.overrides) ? input.overrides : {};
    const config: Record<string, Json> = { ...(input.charm.definition.config ?? {}), ...input.options, ...overrides };
    const log = charmLogger(input.log.child({ component: 'charm' }), () => this.currentRunLog);
    this.ctx = Object.freeze({ unit: input.unit, service: input.service, dir: input.dir, address: input.address, config: Object.freeze(config), log });
  }

  /** The unit's context as handlers see it (changes with `reconfigure`). */
  get unitContext(): UnitContext {
    return this.ctx;
  }

  /** Every handler the engine runs (the charm's and its actions'), wrapped for logging and live rebuilds. */
  handlers(): HandlerSpec[] {
    const built = buildHandlers(this.charm, this.ctx);
    for (const h of built) this.live.set(h.name, h);
    return [...built, ...actionHandlers(this.charm.definition, () => this.ctx, this.actionResults)].map((h) => this.wrap(h));
  }

  /** Every line a handler (or the charm's logger) writes during a run carries the run id. */
  private wrap(h: HandlerSpec): HandlerSpec {
    const run = async (ctx: HandlerContext): Promise<void> => {
      const log = runLogger(this.log, ctx.runId, { handler: ctx.handler });
      this.currentRunLog = log;
      log.debug('handler started');
      try {
        // Executors the handler calls log their steps (command, exit, output tail) on this run.
        // The live build of this handler: after `rhizome config` it closes over the new config.
        const impl = this.live.get(h.name) ?? h;
        await withStepLog(log, () => impl.run(ctx));
        log.debug('handler finished');
      } catch (err) {
        log.warn({ err }, 'handler failed');
        throw err;
      } finally {
        this.currentRunLog = undefined;
      }
    };
    return { ...h, run };
  }

  /** The charm's options with defaults and current values. */
  configOptions(): ConfigView {
    return { unit: this.ctx.unit, service: this.ctx.service, charm: this.charm.metadata.name, options: describeConfig(this.charm.definition, this.ctx.config) };
  }

  /**
   * Changes options (key → text, read by each default's type; see
   * charm/config-options.ts). Checked in full first: a bad key or value
   * changes nothing. Then the handlers are rebuilt for the new config and
   * one `config.changed` run commits the new `config` fact (and the
   * overrides, so a restart keeps them). `dryRun` only checks.
   */
  reconfigure(engine: Engine, set: Readonly<Record<string, string>>, dryRun: boolean): ConfigChange {
    const plan = planConfigChange(this.charm.definition, this.ctx.config, set);
    const unit = this.ctx.unit;
    if (dryRun || plan.changed.length === 0) return { unit, changed: plan.changed, config: plan.config };
    const ctx: UnitContext = Object.freeze({ ...this.ctx, config: Object.freeze({ ...plan.config }) });
    const rebuilt = buildHandlers(this.charm, ctx);
    this.ctx = ctx;
    for (const h of rebuilt) this.live.set(h.name, h);
    const prior = getFact(engine.knowledge, CONFIG_OVERRIDES_FACT);
    const overrides: Record<string, Json> = { ...(isJsonObject(prior) ? prior : {}) };
    for (const k of plan.changed) overrides[k] = plan.config[k]!;
    const config = plan.config as Json;
    this.log.info({ changed: plan.changed }, `config changed: ${plan.changed.join(', ')}`);
    engine
      .submit(internalEvent('config.changed', config), {
        apply: (tx) => {
          tx.set('config', config);
          tx.set(CONFIG_OVERRIDES_FACT, overrides);
        },
      })
      .catch((err: unknown) => this.log.warn({ err }, 'config.changed run did not commit'));
    return { unit, changed: plan.changed, config: plan.config };
  }

  actions(): ActionList {
    return { unit: this.ctx.unit, charm: this.charm.metadata.name, actions: describeActions(this.charm.definition) };
  }

  /**
   * Runs an action as one fail-fast run (see charm/actions.ts). Bad
   * parameters throw before anything runs; a failing action answers
   * `{ ok: false, error }` after its run rolled back. In the background
   * (checked parameters, then `{ queued: true }` at once), the outcome is
   * logged when the run ends, with its run id, so `rhizome logs --run ID`
   * and `rhizome runs UNIT` show it.
   */
  async runAction(engine: Engine, name: string, set: Readonly<Record<string, string>>, background = false): Promise<ActionOutcome> {
    const params = readActionParams(this.charm.definition, name, set);
    const done = this.action(engine, name, params);
    if (!background) return done;
    void done.then((o) => {
      // A result is the charm's to size: the log keeps a bounded rendering of it.
      const text = o.result === undefined ? undefined : JSON.stringify(o.result);
      const result = text !== undefined && text.length <= MAX_LOGGED_RESULT_CHARS ? o.result : text === undefined ? undefined : `${text.slice(0, MAX_LOGGED_RESULT_CHARS)}...`;
      if (o.ok) this.log.info({ action: name, runId: o.runId, result, durationMs: Math.round(o.durationMs) }, `action ${name} completed (background)`);
      else this.log.warn({ action: name, error: o.error, durationMs: Math.round(o.durationMs) }, `action ${name} failed (background): ${o.error ?? ''}`);
    });
    return { unit: this.ctx.unit, action: name, ok: true, queued: true, durationMs: 0 };
  }

  private async action(engine: Engine, name: string, params: Record<string, Json>): Promise<ActionOutcome> {
    const unit = this.ctx.unit;
    const started = performance.now();
    try {
      const report = await engine.submit(internalEvent(actionEvent(name), params), { failFast: true });
      const result = this.actionResults.get(report.runId) ?? null;
      this.actionResults.delete(report.runId);
      return { unit, action: name, ok: true, runId: report.runId, result, durationMs: performance.now() - started };
    } catch (err) {
      return { unit, action: name, ok: false, error: err instanceof Error ? err.message : String(err), durationMs: performance.now() - started };
    } finally {
      // Results of runs that failed after their action returned are never read: keep the map bounded.
      while (this.actionResults.size > MAX_ACTION_RESULTS) this.actionResults.delete(this.actionResults.keys().next().value!);
    }
  }
}

function isJsonObject(v: unknown): v is Record<string, Json> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
