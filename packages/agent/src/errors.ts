/**
 * Typed errors of the agent's building blocks.
 *
 * Every error is an `AgentError` with a stable string `code`
 * (`AGENT_ERR_...`) that scripts and the control API can match on, and a
 * message that says what went wrong *and how to fix it*. Families that carry
 * extra context (a file and byte offset, an exit code and stderr tail, an HTTP
 * status) are subclasses; callers usually only need `err.code`.
 *
 * Codes are part of the public contract (the control API returns them as
 * `{ error: { code, message } }`): add new ones, never rename.
 */

export const AGENT_ERROR_CODES = [
  // persistence
  'AGENT_ERR_STORE_CORRUPT',
  'AGENT_ERR_STORE_LOCKED',
  'AGENT_ERR_STORE_CLOSED',
  'AGENT_ERR_STORE_FAILED',
  'AGENT_ERR_STORE_RECORD_TOO_LARGE',
  // executors
  'AGENT_ERR_EXEC_NOT_FOUND',
  'AGENT_ERR_EXEC_FAILED',
  'AGENT_ERR_EXEC_TIMEOUT',
  'AGENT_ERR_EXEC_BAD_OPTIONS',
  'AGENT_ERR_ANSIBLE_MISSING',
  'AGENT_ERR_ANSIBLE_FAILED',
  'AGENT_ERR_ANSIBLE_OUTPUT',
  'AGENT_ERR_CHEF_MISSING',
  'AGENT_ERR_CHEF_FAILED',
  'AGENT_ERR_CHEF_BAD_DATA_BAG',
  // control API
  'AGENT_ERR_UNAUTHORIZED',
  'AGENT_ERR_NOT_FOUND',
  'AGENT_ERR_METHOD_NOT_ALLOWED',
  'AGENT_ERR_BAD_REQUEST',
  'AGENT_ERR_BODY_TOO_LARGE',
  'AGENT_ERR_INTERNAL',
  'AGENT_ERR_NOT_RUNNING',
  'AGENT_ERR_CONTROL_HTTP',
  // watch / log
  'AGENT_ERR_WATCH_FAILED',
  'AGENT_ERR_BAD_OPTIONS',
  // agent composition, CLI, deploy (append only)
  'AGENT_ERR_BAD_CONFIG',
  'AGENT_ERR_CHARM_LOAD',
  'AGENT_ERR_UNKNOWN_UNIT',
  'AGENT_ERR_RELATE',
  'AGENT_ERR_BAD_BUNDLE',
  'AGENT_ERR_DEPLOY',
  'AGENT_ERR_STOPPED',
  'AGENT_ERR_UNIT_ERROR',
  'AGENT_ERR_LOCK_TIMEOUT',
  'AGENT_ERR_SSH',
  'AGENT_ERR_NO_NODE',
  'AGENT_ERR_UNKNOWN_MACHINE',
  // across machines
  'AGENT_ERR_INSECURE',
  'AGENT_ERR_KEYS',
  'AGENT_ERR_REMOTE',
  // Runtime charm config and actions (`rhizome config`, `rhizome run`).
  'AGENT_ERR_CONFIG',
  'AGENT_ERR_ACTION',
  // release: compiled code and charms (append only)
  'AGENT_ERR_NOT_BUILT',
  'AGENT_ERR_CHARM_TYPE',
  // `rhizome run --timeout`: units that did not answer in time
  'AGENT_ERR_ACTION_TIMEOUT',
  // bad usage of the CLI (exit 2): cli/usage.ts
  'AGENT_ERR_USAGE',
  // an agent older than the state format in its data directory
  'AGENT_ERR_STATE_TOO_NEW',
  // `rhizome upgrade-model`: a unit that did not come back on the new release
  'AGENT_ERR_UPGRADE',
  // the deployment home (or a file in it) belongs to another user: the CLI run as someone else
  'AGENT_ERR_PERMISSION',
] as const;

export type AgentErrorCode = (typeof AGENT_ERROR_CODES)[number];

export function isAgentErrorCode(value: unknown): value is AgentErrorCode {
  return typeof value === 'string' && (AGENT_ERROR_CODES as readonly string[]).includes(value);
}

/** Base class of every error raised by the agent's building blocks. */
export class AgentError extends Error {
  override readonly name: string = 'AgentError';
  readonly code: AgentErrorCode;

  constructor(code: AgentErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

/**
 * The durable store found bytes it cannot trust somewhere other than the tail
 * of the log (or in a snapshot). Nothing has been truncated or deleted: the
 * operator decides (restore a backup, or cut the file at `offset`).
 */
export class StoreCorruptError extends AgentError {
  override readonly name = 'StoreCorruptError';
  readonly file: string;
  readonly offset: number;

  constructor(file: string, offset: number, reason: string, options?: { cause?: unknown }) {
    super(
      'AGENT_ERR_STORE_CORRUPT',
      `corrupt record in ${file} at byte offset ${offset}: ${reason}. ` +
        `Nothing was truncated or deleted. Restore the data directory from a backup, ` +
        `or, accepting the loss of every record from that offset on, truncate the file ` +
        `(truncate -s ${offset} '${file}') and restart the agent.`,
      options,
    );
    this.file = file;
    this.offset = offset;
  }
}

/** What a failed external command left behind, as ExecError records it. */
export interface ExecErrorDetails {
  command: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stderrTail: string;
  stdoutTail?: string;
}

/** A child process (command, ansible-playbook, chef-client) failed or timed out. */
export class ExecError extends AgentError {
  override readonly name: string = 'ExecError';
  /** The program that was run. */
  readonly command: string;
  /** Exit code, or `null` when the process was killed by a signal or never started. */
  readonly exitCode: number | null;
  /** The signal that ended the process, if any. */
  readonly signal: NodeJS.Signals | null;
  /** The last bytes of stderr (bounded), for run reports. */
  readonly stderrTail: string;
  /** The last bytes of stdout (bounded); some tools (chef-client) report errors there. */
  readonly stdoutTail: string;

  constructor(
    code: AgentErrorCode,
    message: string,
    details: ExecErrorDetails,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.command = details.command;
    this.exitCode = details.exitCode;
    this.signal = details.signal;
    this.stderrTail = details.stderrTail;
    this.stdoutTail = details.stdoutTail ?? '';
  }
}

/** One failed Ansible task, as reported by the json callback. */
export interface AnsibleTaskFailure {
  task: string;
  host: string;
  /** Ansible's message, followed by the task's stderr (or stdout) when it has some: the line that says why. Bounded. */
  msg: string;
  /** The command's exit code, for command/shell-like tasks. */
  rc?: number;
  /** The task's stderr and stdout, tails of at most ANSIBLE_OUTPUT_TAIL characters each. */
  stderr?: string;
  stdout?: string;
}

/** How much of a failed task's stderr/stdout an error keeps (the tail: where the reason usually is). */
export const ANSIBLE_OUTPUT_TAIL = 2000;

/** `ansible-playbook` ran and reported failed or unreachable tasks. */
export class AnsibleError extends ExecError {
  override readonly name = 'AnsibleError';
  readonly failedTasks: readonly AnsibleTaskFailure[];

  constructor(
    message: string,
    details: ExecErrorDetails & { failedTasks: readonly AnsibleTaskFailure[] },
    options?: { cause?: unknown },
  ) {
    super('AGENT_ERR_ANSIBLE_FAILED', message, details, options);
    this.failedTasks = details.failedTasks;
  }
}

/**
 * An error that crosses the control API. On the server, `status` is the HTTP
 * status it is answered with; on the client, the status the agent answered.
 */
export class ControlError extends AgentError {
  override readonly name = 'ControlError';
  readonly status: number;
  /**
   * On the client: the code exactly as the agent sent it, which may belong to
   * another package (`code` is then AGENT_ERR_CONTROL_HTTP). Else equals `code`.
   */
  readonly remoteCode: string;

  constructor(
    code: AgentErrorCode,
    status: number,
    message: string,
    options?: { cause?: unknown; remoteCode?: string },
  ) {
    super(code, message, options);
    this.status = status;
    this.remoteCode = options?.remoteCode ?? code;
  }
}

/** Turns any thrown value into an `AgentError` (unknown values become AGENT_ERR_INTERNAL). */
export function toAgentError(err: unknown): AgentError {
  if (err instanceof AgentError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AgentError('AGENT_ERR_INTERNAL', `internal error: ${message}`, { cause: err });
}
