/**
 * @rhizome/agent: charms, their executors, and the agent that runs them.
 * - Charm authors: defineCharm and the executors (shell, Ansible, Chef).
 * - Embedders: the Agent, its config, a client for running agents, and the
 *   deployment functions behind `rhizome deploy`.
 * The CLI and how to launch it: `@rhizome/agent/cli`. Loading a charm in a
 * test: `@rhizome/agent/testing`. The rest of src/ is internal.
 */
export { defineAction, defineCharm } from './charm/define';
export type { ActionDefinition, ActionParams, CharmDefinition, UnitContext, CharmLogger, WorkloadPidFile } from './charm/define';
export { runCommand, INPUT_ENV } from './executors/run-command';
export type { RunCommandOptions, CommandResult } from './executors/run-command';
export { runAnsiblePlaybook } from './executors/ansible';
export type { AnsiblePlaybookOptions, AnsibleExtraVars, AnsibleResult, AnsibleHostStats } from './executors/ansible';
export { runChef } from './executors/chef';
export type { RunChefOptions, ChefResult, ChefDataBags } from './executors/chef';
export { AgentError, ExecError, AnsibleError, ControlError, isAgentErrorCode } from './errors';
export type { AgentErrorCode, AnsibleTaskFailure } from './errors';
export { Agent } from './agent';
export { DEFAULT_AGENT_GOSSIP_TUNING } from './unit/agent-options';
export type { AgentOptions } from './unit/agent-options';
export { parseAgentConfig, loadAgentConfig } from './config';
export type { AgentConfig, AgentConfigInput } from './config';
export type { AgentInfo } from './agent-info';
export type { AgentStatus, LocalConvergence } from './unit/api';
export { ControlClient } from './control/client';
export type { ControlClientOptions } from './control/client';
export { connectToAgent } from './control/endpoint';
// Loaded on first call (internal/deploy-entry.ts): agents load this index but never deploy.
export { deploy, addUnit, startUnit, stopUnit, killUnit, removeUnit, destroy, relate, checkConvergence, waitForConvergence } from './internal/deploy-entry';
export type { DeployOptions, DeployResult } from './deploy/deploy';
export { readDeployment, clientFor, unitOf } from './deploy/deployment';
export type { Deployment, DeployedUnit } from './deploy/deployment';
export type { ConvergenceCheck, WaitOptions } from './deploy/converge';
