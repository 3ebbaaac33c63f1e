/**
 * runChef: the `chef` executor, as in the Tengu paper's example: relation
 * data is written as Chef data bags and `chef-client` runs in local mode
 * (`-z`, chef-zero) with an override run list (`-o`), so recipes read it with
 * `data_bag_item('db', 'pg-0')`.
 *
 * Split in three so the parts can be checked without Chef installed:
 * - `planChefRun` (pure): validates names, builds the data bag files
 *   (`<cwd>/data_bags/<bag>/<item>.json`, each with its `id`) and the
 *   command line;
 * - `writeChefDataBags`: replaces `<cwd>/data_bags` with the planned files
 *   (mode 0600: relation data may hold passwords), so a bag or item that
 *   disappeared from the relations disappears for Chef too;
 * - `runChef`: plan, check `chef-client` is installed (Debian does not
 *   package it: `AGENT_ERR_CHEF_MISSING` says so), write, run.
 */
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { AgentError, ExecError } from '../errors';
import { DEFAULT_RUN_COMMAND_OPTIONS, runCommand } from './run-command';
import type { CommandResult } from './run-command';
import { which } from './which';

/** `{ [bag]: { [item]: json object } }` */
export type ChefDataBags = Readonly<Record<string, Readonly<Record<string, Readonly<Record<string, unknown>>>>>>;

export interface ChefRunOptions {
  /** Directory of cookbooks (Chef's `cookbook_path`). */
  cookbookPath: string;
  /** Recipes and roles: `nginx`, `nginx::proxy`, `recipe[nginx]`, `role[web]`. */
  runList: readonly string[];
  dataBags?: ChefDataBags;
  /** Chef's repository directory for this unit; data bags and node files live here. Required. */
  cwd: string;
  /** The chef-client program; default `chef-client` (Cinc users: `cinc-client`). */
  chefClient?: string;
  /** Pass `--chef-license accept-no-persist` (Chef 15+ asks otherwise). Default false: the operator accepts. */
  acceptLicense?: boolean;
}

export interface RunChefOptions extends ChefRunOptions {
  timeoutMs?: number;
  /** Stops chef-client (its process group) when it aborts: pass the handler's `ctx.signal`. */
  signal?: AbortSignal;
  env?: Readonly<Record<string, string>>;
}

export const DEFAULT_CHEF_OPTIONS = Object.freeze({
  chefClient: 'chef-client',
  /** Accepting a license is the operator's call, never the agent's by default. */
  acceptLicense: false,
  timeoutMs: DEFAULT_RUN_COMMAND_OPTIONS.timeoutMs,
});

export interface ChefPlan {
  command: string;
  args: string[];
  cwd: string;
  dataBagPath: string;
  /** Data bag files to write, absolute paths, JSON text. */
  files: { path: string; content: string }[];
}

export interface ChefResult extends CommandResult {
  plan: ChefPlan;
}

// Chef's own rules, minus anything that could escape the directory.
const BAG_NAME = /^[A-Za-z0-9_-]+$/;
const ITEM_ID = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;
const BARE_RECIPE = /^[A-Za-z0-9_-]+(::[A-Za-z0-9_-]+)?$/;
const RUN_LIST_ITEM = /^(recipe|role)\[[A-Za-z0-9_-]+(::[A-Za-z0-9_-]+)?(@[0-9.]+)?\]$/;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function bad(code: 'AGENT_ERR_CHEF_BAD_DATA_BAG' | 'AGENT_ERR_EXEC_BAD_OPTIONS', message: string): never {
  throw new AgentError(code, message);
}

/** A unit name as a data bag item id: `pg/0` -> `pg-0` (ids can't contain '/'). */
export function chefItemId(unitName: string): string {
  return unitName.replace(/[^A-Za-z0-9_.-]/g, '-');
}

/** Builds the files and command line of a Chef run; pure, throws typed errors for bad input. */
export function planChefRun(opts: ChefRunOptions): ChefPlan {
  if (typeof opts.cwd !== 'string' || !isAbsolute(opts.cwd)) {
    bad('AGENT_ERR_EXEC_BAD_OPTIONS', `runChef: \`cwd\` must be an absolute directory (the unit's Chef repository)`);
  }
  if (typeof opts.cookbookPath !== 'string' || opts.cookbookPath === '') {
    bad('AGENT_ERR_EXEC_BAD_OPTIONS', 'runChef: `cookbookPath` must name the cookbooks directory');
  }
  if (!Array.isArray(opts.runList) || opts.runList.length === 0) {
    bad('AGENT_ERR_EXEC_BAD_OPTIONS', 'runChef: `runList` must list at least one recipe, e.g. ["nginx"]');
  }
  const runList = opts.runList.map((entry) => {
    if (typeof entry === 'string' && RUN_LIST_ITEM.test(entry)) return entry;
    if (typeof entry === 'string' && BARE_RECIPE.test(entry)) return `recipe[${entry}]`;
    return bad(
      'AGENT_ERR_EXEC_BAD_OPTIONS',
      `runChef: bad run list entry ${JSON.stringify(entry)}; use 'cookbook', 'cookbook::recipe', 'recipe[...]' or 'role[...]'`,
    );
  });
  const cwd = resolve(opts.cwd);
  const cookbookPath = resolve(cwd, opts.cookbookPath);
  const dataBagPath = join(cwd, 'data_bags');

  const files: ChefPlan['files'] = [];
  for (const [bag, items] of Object.entries(opts.dataBags ?? {})) {
    if (!BAG_NAME.test(bag)) {
      bad('AGENT_ERR_CHEF_BAD_DATA_BAG', `data bag name ${JSON.stringify(bag)} is invalid: use letters, digits, _ and -`);
    }
    if (!isObject(items)) bad('AGENT_ERR_CHEF_BAD_DATA_BAG', `data bag '${bag}' must map item ids to JSON objects`);
    for (const [item, data] of Object.entries(items)) {
      if (!ITEM_ID.test(item)) {
        bad(
          'AGENT_ERR_CHEF_BAD_DATA_BAG',
          `data bag item id ${JSON.stringify(item)} in '${bag}' is invalid: use letters, digits, _, - and . ` +
            `(a unit name such as 'pg/0' must be mapped, e.g. to 'pg-0')`,
        );
      }
      if (!isObject(data)) bad('AGENT_ERR_CHEF_BAD_DATA_BAG', `data bag item '${bag}/${item}' must be a JSON object`);
      if (data['id'] !== undefined && data['id'] !== item) {
        bad(
          'AGENT_ERR_CHEF_BAD_DATA_BAG',
          `data bag item '${bag}/${item}' has id ${JSON.stringify(data['id'])}; Chef requires the id to equal the item name`,
        );
      }
      let content: string;
      try {
        content = `${JSON.stringify({ ...data, id: item }, null, 2)}\n`;
      } catch (err) {
        return bad('AGENT_ERR_CHEF_BAD_DATA_BAG', `data bag item '${bag}/${item}' is not JSON: ${String(err)}`);
      }
      files.push({ path: join(dataBagPath, bag, `${item}.json`), content });
    }
  }

  const args = [
    '-z', // local mode (chef-zero)
    '-o', // override run list
    runList.join(','),
    '--config-option',
    `chef_repo_path=${cwd}`,
    '--config-option',
    `cookbook_path=${cookbookPath}`,
    '--config-option',
    `data_bag_path=${dataBagPath}`,
    '--config-option',
    `node_path=${join(cwd, 'nodes')}`,
    '--config-option',
    `file_cache_path=${join(cwd, 'cache')}`,
    '--no-color',
  ];
  if (opts.acceptLicense ?? DEFAULT_CHEF_OPTIONS.acceptLicense) args.push('--chef-license', 'accept-no-persist');
  return { command: opts.chefClient ?? DEFAULT_CHEF_OPTIONS.chefClient, args, cwd, dataBagPath, files };
}

/** Replaces the plan's data bag directory with exactly the planned files. */
export async function writeChefDataBags(plan: ChefPlan): Promise<void> {
  await rm(plan.dataBagPath, { recursive: true, force: true });
  await mkdir(plan.dataBagPath, { recursive: true, mode: 0o700 });
  for (const file of plan.files) {
    await mkdir(dirname(file.path), { recursive: true, mode: 0o700 });
    await writeFile(file.path, file.content, { mode: 0o600 });
    await chmod(file.path, 0o600);
  }
}

function chefFailureLine(text: string): string | undefined {
  const lines = text.split('\n').map((l) => l.trim());
  return lines.find((l) => /FATAL|ERROR:/.test(l) && !/Stacktrace dumped/.test(l));
}

/** Writes the data bags and runs chef-client in local mode; typed errors when missing or failing. */
export async function runChef(opts: RunChefOptions): Promise<ChefResult> {
  const plan = planChefRun(opts);
  const found = await which(plan.command, opts.env?.['PATH'] ?? process.env['PATH']);
  if (found === undefined) {
    throw new ExecError(
      'AGENT_ERR_CHEF_MISSING',
      `'${plan.command}' is not installed, so the chef executor can't run. Debian does not package Chef Infra ` +
        `Client: install it from Chef (or install Cinc Client and pass chefClient: 'cinc-client'), ` +
        `or use the ansible or exec executor for this charm.`,
      { command: plan.command, exitCode: null, signal: null, stderrTail: '' },
    );
  }
  await mkdir(plan.cwd, { recursive: true });
  await writeChefDataBags(plan);
  try {
    const result = await runCommand({
      command: found,
      args: plan.args,
      cwd: plan.cwd,
      timeoutMs: opts.timeoutMs ?? DEFAULT_CHEF_OPTIONS.timeoutMs,
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      ...(opts.env === undefined ? {} : { env: opts.env }),
    });
    return { ...result, plan };
  } catch (err) {
    if (!(err instanceof ExecError) || err.code !== 'AGENT_ERR_EXEC_FAILED') throw err;
    const why = chefFailureLine(err.stdoutTail) ?? chefFailureLine(err.stderrTail) ?? err.message;
    throw new ExecError(
      'AGENT_ERR_CHEF_FAILED',
      `chef-client run [${plan.args[2]}] failed (exit ${err.exitCode ?? err.signal}): ${why}`,
      {
        command: found,
        exitCode: err.exitCode,
        signal: err.signal,
        stderrTail: err.stderrTail,
        stdoutTail: err.stdoutTail,
      },
      { cause: err },
    );
  }
}
