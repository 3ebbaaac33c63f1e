/**
 * `rhizome agent`: runs one agent in the foreground, configured by a file
 * (`--config`) and/or flags (flags win). SIGTERM or SIGINT stops it
 * gracefully (current run finished or rolled back, mesh left, state
 * flushed) and exits 0; SIGUSR2 does the same for a restart, staying in the
 * mesh and leaving the charm's workloads running (`Agent.stop`).
 */
import type { Command } from 'commander';
import { AgentError } from '../../errors';
import { UsageError } from '../usage';
import type { AgentDashboard } from '../../dashboard/agent-dashboard';
import type { GlobalOptions } from '../target';

interface AgentFlags {
  config?: string;
  unit?: string;
  charm?: string;
  charmModule?: string;
  tag?: string[];
  bind?: string;
  advertise?: string;
  profile?: string;
  insecure?: boolean;
  label?: string;
  bindHost?: string;
  bindPort?: string;
  seed?: string[];
  keyring?: string;
  logLevel?: string;
  controlPort?: string;
  option?: string[];
  optionsJson?: string;
  snapshotEvery?: string;
  fsync?: boolean;
  logStdout?: boolean;
  dashboard?: string;
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

function count(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[1-9]\d{0,8}$/.test(v)) throw new UsageError(`${flag} must be a whole number of at least 1, got ${JSON.stringify(v)}`, 'AGENT_ERR_BAD_CONFIG');
  return Number(v);
}

/** `--options-json '{"port": 8080}'`: one JSON object (its values are checked by the charm's schema later, like the file's). */
function optionsJson(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--options-json is not JSON (${(err as Error).message}); write an object, e.g. '{"port": 8080}'`, 'AGENT_ERR_BAD_CONFIG');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(`--options-json must be a JSON object, e.g. '{"port": 8080}', got ${JSON.stringify(text)}`, 'AGENT_ERR_BAD_CONFIG');
  }
  return value as Record<string, unknown>;
}

function port(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,5}$/.test(v)) throw new UsageError(`${flag} must be a port number (0 picks a free one), got ${JSON.stringify(v)}`, 'AGENT_ERR_BAD_CONFIG');
  return Number(v);
}

function keyValues(list: string[] | undefined, flag: string, parseValue: boolean): Record<string, unknown> | undefined {
  if (!list) return undefined;
  const out: Record<string, unknown> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`${flag} takes KEY=VALUE, got ${JSON.stringify(kv)}`, 'AGENT_ERR_BAD_CONFIG');
    const raw = kv.slice(i + 1);
    let value: unknown = raw;
    if (parseValue) {
      try {
        value = JSON.parse(raw);
      } catch {
        value = raw;
      }
    }
    out[kv.slice(0, i)] = value;
  }
  return out;
}

export function registerAgent(program: Command, globals: () => GlobalOptions): void {
  program
    .command('agent')
    .description('run an agent in the foreground: from --config FILE (deploy writes <data dir>/agent.yaml), or --unit, --charm and the global --data-dir; flags win over the file')
    .option('--config <file>', 'agent config file (YAML or JSON)')
    .option('--unit <name>', 'unit name, e.g. web/0')
    .option('--charm <dir>', 'charm folder (holding charm.ts)')
    .option('--charm-module <file>', 'the charm compiled by `rhizome build-charm` (default: compile --charm at start)')
    .option('--tag <key=value>', 'extra gossip tag (repeatable)', collect)
    .option('--bind <host[:port]>', 'gossip listen address (default 127.0.0.1 with a free port; off loopback the port defaults to 7946, like Serf; 0.0.0.0 = every interface)')
    .option('--advertise <host[:port]>', 'address other agents dial (default: the bind address; for a wildcard bind, the first non-loopback address)')
    .option('--profile <name>', 'gossip timings: local, lan or wan (default local on loopback, lan otherwise)')
    .option('--bind-host <host>', 'alias: the host part of --bind')
    .option('--bind-port <port>', 'alias: the port part of --bind (0 = pick)')
    .option('--seed <host:port>', 'gossip address to join (repeatable)', collect)
    .option('--keyring <file>', "file of base64 gossip keys, one per line, first = primary ('rhizome keygen' makes one)")
    .option('--insecure', 'run unencrypted on a non-loopback address (refused without this flag)')
    .option('--label <label>', 'cluster label: agents with different labels never merge')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .option('--control-port <port>', 'control API port (0 = pick)')
    .option('--option <key=value>', 'charm config option, value parsed as JSON when it is (repeatable)', collect)
    .option('--options-json <json>', 'charm config options as one JSON object (--option wins over it)')
    .option('--snapshot-every <records>', 'snapshot the state after this many log records (default 500)')
    .option('--no-fsync', 'do not fsync the state (tests only: a crash may lose commits)')
    .option('--log-stdout', 'also print log lines to stdout')
    .option('--dashboard <[host:]port>', 'serve the dashboard from this agent (127.0.0.1 unless a host is named; 0 = a free port); the URL with its token goes to <data dir>/dashboard.url')
    .action(async (flags: AgentFlags) => {
      const g = globals();
      // Loaded on demand: the other commands do not need the agent's dependencies.
      const [{ Agent }, { loadAgentConfig }] = await Promise.all([import('../../agent'), import('../../config')]);
      const fromJson = optionsJson(flags.optionsJson);
      const fromFlags = keyValues(flags.option, '--option', true);
      const options = fromJson === undefined && fromFlags === undefined ? undefined : { ...fromJson, ...fromFlags };
      const config = await loadAgentConfig(flags.config, {
        unit: flags.unit,
        charmDir: flags.charm,
        charmModule: flags.charmModule,
        dataDir: g.dataDir ?? (process.env['RHIZOME_DATA_DIR'] || undefined),
        tags: keyValues(flags.tag, '--tag', false),
        bind: flags.bind,
        advertise: flags.advertise,
        profile: flags.profile,
        bindHost: flags.bindHost,
        bindPort: port(flags.bindPort, '--bind-port'),
        seeds: flags.seed,
        keyringFile: flags.keyring,
        insecure: flags.insecure,
        label: flags.label,
        logLevel: flags.logLevel,
        controlPort: port(flags.controlPort, '--control-port'),
        snapshotEvery: count(flags.snapshotEvery, '--snapshot-every'),
        options,
        logToStdout: flags.logStdout,
        dashboard: flags.dashboard,
      }).catch((err: unknown) => {
        // A configuration the agent refuses (file or flags) is bad usage: exit 2, nothing started.
        throw err instanceof AgentError && err.code === 'AGENT_ERR_BAD_CONFIG' ? new UsageError(err.message, 'AGENT_ERR_BAD_CONFIG') : err;
      });
      const agent = await Agent.start(config, { fsync: flags.fsync !== false });
      // Charm code runs in this process: its stray rejections and throws are told in agent.log (see crash-guard.ts).
      const { installCrashGuard } = await import('../../internal/crash-guard');
      installCrashGuard({ log: agent.log, unit: agent.unit });
      const abort = new AbortController();
      if (config.logToStdout) {
        void (async () => {
          for await (const r of agent.logTail.follow({ signal: abort.signal, replay: 0 })) process.stdout.write(`${JSON.stringify(r)}\n`);
        })().catch(() => undefined);
      }
      let dashboard: AgentDashboard | undefined;
      if (config.dashboard !== undefined) {
        const { serveAgentDashboard } = await import('../../dashboard/agent-dashboard');
        try {
          dashboard = await serveAgentDashboard({ ...config.dashboard, dataDir: config.dataDir, controlUrl: agent.controlUrl, warn: (m) => agent.log.warn(m) });
          agent.log.info({ dashboard: dashboard.address, urlFile: dashboard.urlFile }, 'dashboard serving');
        } catch (err) {
          // The agent runs on without it: a taken port must not stop a unit.
          agent.log.error({ err }, 'dashboard not served');
          process.stderr.write(`warning: agent ${agent.unit}: dashboard not served on ${config.dashboard.host}:${config.dashboard.port}: ${(err as Error).message}\n`);
        }
      }
      const shown = dashboard ? `, dashboard ${dashboard.address} (with its token in ${dashboard.urlFile})` : '';
      process.stdout.write(`agent ${agent.unit} running: control ${agent.controlUrl}, gossip ${agent.gossipAddress}, data ${config.dataDir}${shown}\n`);
      let signalled = false;
      const stop = (signal: string, restart = false): void => {
        signalled = true;
        agent.log.info({ signal }, restart ? 'signal received, stopping for a restart (staying in the mesh)' : 'signal received, stopping');
        abort.abort();
        void dashboard?.close().catch(() => undefined);
        void agent.stop({ restart });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      // rhizome upgrade-model: a new agent starts from this data directory right after.
      process.once('SIGUSR2', () => stop('SIGUSR2', true));
      await agent.done;
      await dashboard?.close().catch(() => undefined);
      if (!signalled) process.stderr.write(`error: agent ${agent.unit} stopped: ${String((agent.failure as Error | undefined)?.message ?? agent.failure)}\n`);
      process.exit(signalled ? 0 : 1);
    });
}
