/**
 * Which agent(s) a CLI command talks to, in order of precedence:
 *   --agent URL --token T     one agent, explicitly;
 *   --data-dir DIR            the agent serving from DIR (control.json + token);
 *   $RHIZOME_DATA_DIR         the same, from the environment;
 *   the deployment            `--deployment NAME` or the last one written in
 *                             the home (`--home`, $RHIZOME_HOME, ./.rhizome);
 *   the local agent           with no deployment recorded here, a live agent
 *                             whose data directory is under the home
 *                             (local-agent.ts).
 * A single agent answers for every unit of its mesh: a unit that is not its
 * own is reached through it, over the mesh (`ControlClient.forUnit`).
 */
import { ControlClient } from '../control/client';
import { connectToAgent } from '../control/endpoint';
import { AgentError } from '../errors';
import { clientFor, liveUnits, readDeployment, rhizomeHome, unitOf, type Deployment } from '../deploy/deployment';
import { DATA_DIR_ENV, findLocalAgent } from './local-agent';
import { UsageError } from './usage';

export interface GlobalOptions {
  home?: string;
  deployment?: string;
  dataDir?: string;
  agent?: string;
  token?: string;
  json?: boolean;
}

/** SERVICE/N, as the control API takes it. */
const UNIT_NAME = /^[a-z][a-z0-9-]{0,62}\/\d{1,6}$/;

export type Target = { kind: 'single'; client: ControlClient } | { kind: 'deployment'; deployment: Deployment };

export async function resolveTarget(g: GlobalOptions): Promise<Target> {
  if (g.agent !== undefined) {
    if (g.token === undefined) throw new UsageError('--agent URL needs --token T (the agent\'s control.token)', 'AGENT_ERR_BAD_OPTIONS');
    return { kind: 'single', client: new ControlClient({ url: g.agent, token: g.token, timeoutMs: 10_000 }) };
  }
  if (g.dataDir !== undefined) return { kind: 'single', client: await connectToAgent(g.dataDir, { timeoutMs: 10_000 }) };
  const fromEnv = process.env[DATA_DIR_ENV];
  if (fromEnv !== undefined && fromEnv !== '' && g.deployment === undefined) return { kind: 'single', client: await connectToAgent(fromEnv, { timeoutMs: 10_000 }) };
  const home = rhizomeHome(g.home);
  try {
    return { kind: 'deployment', deployment: await readDeployment(home, g.deployment) };
  } catch (err) {
    // No deployment recorded on this host: the local agent sees the whole mesh.
    if (g.deployment !== undefined || (err as { code?: unknown }).code !== 'AGENT_ERR_NOT_RUNNING') throw err;
    const dataDir = await findLocalAgent(home);
    if (dataDir === undefined) {
      throw new AgentError(
        'AGENT_ERR_NOT_RUNNING',
        `no deployment found in ${home} (nor a running agent under it); run 'rhizome deploy BUNDLE' first, or point at this host's agent with --data-dir DIR (or $${DATA_DIR_ENV})`,
        { cause: err },
      );
    }
    return { kind: 'single', client: await connectToAgent(dataDir, { timeoutMs: 10_000 }) };
  }
}

/** Some live agent: the single one, or any live unit of the deployment. */
export async function anyClient(g: GlobalOptions): Promise<ControlClient> {
  const t = await resolveTarget(g);
  if (t.kind === 'single') return t.client;
  const live = liveUnits(t.deployment);
  if (live.length === 0) throw new AgentError('AGENT_ERR_NOT_RUNNING', `no unit of deployment "${t.deployment.name}" is running; 'rhizome start UNIT' restarts one`);
  return clientFor(live[0]!, 10_000);
}

/**
 * The agent of a named unit: directly when it is the agent addressed (or a
 * unit of the local deployment), else through a local agent, over the mesh.
 */
export async function unitClient(g: GlobalOptions, unit: string): Promise<ControlClient> {
  if (!UNIT_NAME.test(unit)) {
    const hint = /^[a-z][a-z0-9-]{0,62}$/.test(unit) ? `, e.g. ${unit}/0` : '';
    throw new UsageError(`'${unit}' is not a unit name: a unit is SERVICE/N${hint} ('rhizome status' lists them)`, 'AGENT_ERR_UNKNOWN_UNIT');
  }
  const t = await resolveTarget(g);
  if (t.kind === 'single') {
    const info = await t.client.get<{ unit: string }>('/info');
    return info.unit === unit ? t.client : t.client.forUnit(unit);
  }
  if (t.deployment.units[unit] === undefined) {
    // Not recorded here (placed on another host): any live local unit reaches it over the mesh.
    const live = liveUnits(t.deployment);
    if (live.length > 0) return (await clientFor(live[0]!, 10_000)).forUnit(unit);
  }
  const u = unitOf(t.deployment, unit);
  if (u.state === 'running' && u.unreachable === true) {
    throw new AgentError('AGENT_ERR_SSH', `unit ${unit}'s machine ${u.machine ?? '?'} (${u.ssh ?? '?'}) does not answer over SSH; check the machine and its network (e.g. 'ssh ${u.ssh ?? 'HOST'} true')`);
  }
  if (!liveUnits(t.deployment).some((x) => x.unit === unit)) {
    throw new AgentError('AGENT_ERR_NOT_RUNNING', `unit ${unit} is not running (${u.state}); 'rhizome start ${unit}' restarts it from its data directory`);
  }
  return clientFor(u, 10_000);
}
