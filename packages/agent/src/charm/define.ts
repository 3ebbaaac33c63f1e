/**
 * What a charm module exports. A charm is a folder with a `charm.ts` whose
 * default export is `defineCharm({...})`: its metadata (endpoints), config
 * defaults, and a factory that builds its handlers for one unit. The
 * factory form lets handlers close over the unit's identity and working
 * directory without global state, so several units (or agents) can load the
 * same charm in one process.
 *
 * @example
 * export default defineCharm({
 *   metadata: { name: 'hadoop-datanode', requires: { namenode: { interface: 'dfs-slave' } } },
 *   config: { 'dfs.replication': 3 },
 *   handlers: (unit) => [
 *     { name: 'install', when: not(fact('hdfs.installed')), run: (ctx) => ctx.set('hdfs.installed') },
 *   ],
 * });
 */
import type { FactSchemas, HandlerContext, HandlerSpec, Json } from '@rhizome/engine';
import type { BagSchema, InterfaceDefinition } from '@rhizome/relations';

/** Who and where a unit is; given to a charm's factories. */
export interface UnitContext {
  /** Unit name, e.g. `hadoop-datanode/0`. */
  readonly unit: string;
  /** Service (application) name, e.g. `hadoop-datanode`. */
  readonly service: string;
  /** The unit's working directory: the workload's files go here (created before the charm loads). */
  readonly dir: string;
  /**
   * The unit's address: its agent's advertised address (`--advertise`, or
   * the first non-loopback address for a wildcard bind), the same one other
   * agents dial. 127.0.0.1 in local deployments. Publish this (not a unit
   * label) where other machines must reach the workload.
   */
  readonly address: string;
  /** Charm config: the charm's defaults merged with the deployment's options. */
  readonly config: Readonly<Record<string, Json>>;
  /** Structured logger bound to the unit. */
  readonly log: CharmLogger;
}

export interface CharmLogger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
}

export interface CharmDefinition {
  /** Raw metadata in Juju's shape (`name`, `provides`, `requires`, `peers`); checked by parseCharmMetadata at load. */
  readonly metadata: unknown;
  /** Config defaults. */
  readonly config?: Readonly<Record<string, Json>>;
  /**
   * Checks the whole config (defaults + options) whenever an operator changes
   * it (`rhizome config SERVICE key=value`): a zod object schema, e.g.
   * `z.object({ port: z.number().int().min(1).max(65535) })`. A change that
   * fails it is refused before any unit takes it.
   */
  readonly configSchema?: ConfigSchema;
  /** One line per option, shown by `rhizome config SERVICE`. */
  readonly configDescriptions?: Readonly<Record<string, string>>;
  /**
   * The interfaces this charm's endpoints speak: the results of
   * `defineInterface()`. Every endpoint's interface must be declared (the
   * agent has none built in; the examples' `http` and `dfs-slave` come from
   * @rhizome-charms/kit).
   */
  readonly interfaces?: readonly InterfaceDefinition<BagSchema, BagSchema, BagSchema, BagSchema>[];
  /**
   * Operator actions, as Juju charms declare them: `rhizome run UNIT|SERVICE
   * NAME key=value ...` checks the parameters against `params`, then runs
   * `run` on each target as one transaction (a run like any other, in `runs`
   * and the logs). What `run` returns is the action's result; if it throws,
   * the run rolls back and the operator gets the error (the unit is not put
   * in error and nothing is retried).
   *
   * Declare each with `defineAction`, so that `run` gets its parameters
   * typed by the schema.
   *
   * @example
   * actions: {
   *   backup: defineAction({
   *     description: 'copy the data to a file',
   *     params: z.object({ to: z.string().min(1), keep: z.number().int().min(1).default(3) }),
   *     run: async (ctx, params, unit) => ({ path: await backupTo(unit.dir, params.to, params.keep) }),
   *   }),
   * },
   */
  readonly actions?: Readonly<Record<string, CharmAction>>;
  /** Builds the unit's handlers. */
  readonly handlers: (unit: UnitContext) => readonly HandlerSpec[];
  /**
   * The charm's facts, each with a schema (zod 4 or any Standard Schema):
   * `facts: f.schemas` where `const f = defineFacts({ 'kafka.installed': z.boolean() })`.
   * Misspelled keys are TypeScript errors through `f.fact`/`f.handler`, a
   * precondition on an undeclared fact is refused when the agent starts, and
   * values are checked whenever a handler sets them.
   */
  readonly facts?: FactSchemas;
  /** Files (absolute, or relative to the unit's dir) whose changes raise `file.changed` events with `{ path }`. */
  readonly watch?: (unit: UnitContext) => readonly string[];
  /** Called when the agent stops (SIGTERM): stop in-process workloads (servers), release resources. */
  readonly stop?: (unit: UnitContext) => void | Promise<void>;
  /**
   * The workload daemons this charm starts outside the agent's process group
   * (they detach, e.g. nginx, so they survive a SIGKILLed agent), each known
   * by the pid file the daemon itself writes. `rhizome` evaluates this when
   * it starts the unit and keeps the answer in the unit's data directory
   * (`workloads.json`); `rhizome destroy` (and `rhizome stop` of a unit)
   * then terminates whichever of them still runs once the agent is gone,
   * even when the agent was killed: SIGTERM, then SIGKILL (of the daemon's
   * process group when it leads one) after a bounded wait. A pid is
   * signalled only while it is provably the workload: its command line
   * contains every `cmdline` string and it started no later than its pid
   * file was written (a reused pid started afterwards). Must be a pure
   * function of the unit (paths only, no side effects).
   */
  readonly workloads?: (unit: UnitContext) => readonly WorkloadPidFile[];
}

/** One workload daemon a charm starts, known by its pid file (see `CharmDefinition.workloads`). */
export interface WorkloadPidFile {
  /** What to call it in messages, e.g. `nginx`; unique within the charm. */
  readonly name: string;
  /** The pid file the daemon writes (absolute, or relative to the unit's dir). */
  readonly pidFile: string;
  /**
   * Strings the daemon's `/proc/PID/cmdline` (arguments joined by spaces)
   * must all contain, e.g. `['nginx', unit.dir]`: a pid that does not match
   * is someone else's and is left alone. At least one; include the unit's
   * dir when the daemon is given it, so two units' daemons are never confused.
   */
  readonly cmdline: readonly string[];
  /**
   * A directory (absolute) where this workload keeps its data outside the
   * unit's dir, e.g. a database cluster under /var/lib. Removed, once the
   * daemon is stopped, when the unit goes for good (`remove-unit`,
   * `destroy`, a fresh deploy over a stopped deployment); `stop`, `kill`
   * and upgrades keep it. Data inside the unit's dir needs no declaration:
   * it goes with the unit's directory.
   */
  readonly dataDir?: string;
}

/** What `configSchema` must be: a zod schema (or anything with zod's `safeParse`). */
export interface ConfigSchema {
  safeParse(value: unknown): { success: true } | { success: false; error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] } };
}

/** A zod schema for an action's parameters (anything with zod's `safeParse`; its output is what `run` gets). */
export interface ParamsSchema {
  safeParse(value: unknown): { success: true; data: unknown } | { success: false; error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] } };
}

/** One operator action (see `CharmDefinition.actions`). */
export interface CharmAction {
  readonly description?: string;
  /** The parameters, checked before the action runs; without it, any parameters are passed through. */
  readonly params?: ParamsSchema;
  readonly run: (ctx: HandlerContext, params: Readonly<Record<string, Json>>, unit: UnitContext) => Json | void | Promise<Json | void>;
}

/**
 * A parameter schema that says what it outputs: zod 4 schemas do (their
 * Standard Schema `types`), so `defineAction` can type `run`'s parameters.
 */
export interface TypedParamsSchema<Output> extends ParamsSchema {
  readonly '~standard': { readonly types?: { readonly input: unknown; readonly output: Output } | undefined };
}

/** What a `TypedParamsSchema` outputs: the parameters `run` gets. */
export type ActionParams<S> = S extends TypedParamsSchema<infer O> ? O : never;

/** An action whose `run` gets the parameters as its schema outputs them (see `defineAction`). */
export interface ActionDefinition<S extends TypedParamsSchema<unknown>> {
  readonly description?: string;
  /** Checked before `run` (misspelled names, wrong values: the operator is told which), and its output is what `run` gets. */
  readonly params: S;
  readonly run: (ctx: HandlerContext, params: Readonly<ActionParams<S>>, unit: UnitContext) => Json | void | Promise<Json | void>;
}

/**
 * Declares an operator action with typed parameters: `run`'s `params` is
 * the output type of the zod schema `params` (defaults applied, values
 * coerced from the `key=value` texts), checked before `run` is called, so
 * a handler never sees parameters the schema refuses. Keep the output JSON
 * (no transforms to Dates or class instances): it travels as the action
 * run's event payload.
 *
 * @example
 * const rotate = defineAction({
 *   description: 'rotate the logs, keeping the newest N',
 *   params: z.object({ keep: z.number().int().min(1).max(30).default(7) }),
 *   run: (ctx, params) => ({ kept: params.keep }), // params.keep: number
 * });
 * defineCharm({ ..., actions: { rotate } });
 */
export function defineAction<S extends TypedParamsSchema<unknown>>(action: ActionDefinition<S>): CharmAction {
  // Sound at run time: the agent passes run only what params output (readActionParams, charm/actions.ts).
  return action as unknown as CharmAction;
}

/** Identity function that types a charm definition. */
export function defineCharm(definition: CharmDefinition): CharmDefinition {
  return definition;
}
