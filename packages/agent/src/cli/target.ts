/**
 * Which agent(s) a CLI command talks to, in order of precedence:
 *   --agent URL --token T     one agent, explicitly;
 *   --data-dir DIR            the agent serving from DIR (control.json + token);
 *   the deployment            `--deployment NAME` or the last one written in
 *                             the home (`--home`, $RHIZOME_HOME, ./.rhizome).
 */
import { ControlClient } from '../control/client';
import { connectToAgent } from '../control/endpoint';
import { AgentError } from '../errors';
import { clientFor, liveUnits, readDeployment, rhizomeHome, unitOf, type Deployment } from '../deploy/deployment';

export interface GlobalOptions {
  home?: string;
  deployment?: string;
  dataDir?: string;
  agent?: string;
  token?: string;
  json?: boolean;
}

export type Target = { kind: 'single'; client: ControlClient } | { kind: 'deployment'; deployment: Deployment };

export async function resolveTarget(g: GlobalOptions): Promise<Target> {
  if (g.agent !== undefined) {
    if (g.token === undefined) throw new AgentError('AGENT_ERR_BAD_OPTIONS', '--agent URL needs --token T (the agent\'s control.token)');
    return { kind: 'single', client: new ControlClient({ url: g.agent, token: g.token, timeoutMs: 10_000 }) };
  }
  if (g.dataDir !== undefined) return { kind: 'single', client: await connectToAgent(g.dataDir, { timeoutMs: 10_000 }) };
  return { kind: 'deployment', deployment: await readDeployment(rhizomeHome(g.home), g.deployment) };
}

/** Some live agent: the single one, or any live unit of the deployment. */
export async function anyClient(g: GlobalOptions): Promise<ControlClient> {
  const t = await resolveTarget(g);
  if (t.kind === 'single') return t.client;
  const live = liveUnits(t.deployment);
  if (live.length === 0) throw new AgentError('AGENT_ERR_NOT_RUNNING', `no unit of deployment "${t.deployment.name}" is running; 'rhizome start UNIT' restarts one`);
  return clientFor(live[0]!, 10_000);
}

/** The agent of a named unit. With --agent/--data-dir, checks that it is that unit. */
export async function unitClient(g: GlobalOptions, unit: string): Promise<ControlClient> {
  const t = await resolveTarget(g);
  if (t.kind === 'single') {
    const info = await t.client.get<{ unit: string }>('/info');
    if (info.unit !== unit) throw new AgentError('AGENT_ERR_UNKNOWN_UNIT', `the agent addressed is ${info.unit}, not ${unit}`);
    return t.client;
  }
  const u = unitOf(t.deployment, unit);
  if (!liveUnits(t.deployment).some((x) => x.unit === unit)) {
    throw new AgentError('AGENT_ERR_NOT_RUNNING', `unit ${unit} is not running (${u.state}); 'rhizome start ${unit}' restarts it from its data directory`);
  }
  return clientFor(u, 10_000);
}
