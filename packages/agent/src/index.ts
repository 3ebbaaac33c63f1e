export {};
export { AgentError, StoreCorruptError, ExecError, AnsibleError, ControlError, toAgentError } from './errors';
export type { AgentErrorCode, AnsibleTaskFailure } from './errors';
export { DurableStore, DEFAULT_DURABLE_STORE_OPTIONS } from './persistence/durable-store';
export type { DurableStoreOptions, OpenedStore, Recovery } from './persistence/durable-store';
