/**
 * Stopping a unit's agent for a restart in place (SIGUSR2), as
 * `upgrade-model` and `upgrade-charm` do: the agent asks its peers to hold
 * back its `departed` (the rz.restart query), does not leave the mesh, does
 * not run its charm's `stop`, and leaves its workloads serving. The caller
 * starts it again from its data directory (startUnit) right after.
 */
import { readFileSync } from 'node:fs';
import { isAlive, type DeployedUnit, type Deployment } from './deployment';
import { stopRemoteForRestart } from './remote';
import { signalGroup, waitExit } from './unit-process';

/** How long a stopping agent has before it is SIGKILLed (its current run may take a while to finish). */
const STOP_GRACE_MS = 30_000;

/**
 * Whether `pid` has exited: gone, or a zombie (Linux /proc). A detached
 * agent's parent is init, which some (container) inits reap late; waiting
 * for that cost a restart 1-2 s here, and the new agent needs only the old
 * one to have exited. (A stop for good still waits for the reaping: see
 * deployment.ts isAlive.)
 */
export function exited(pid: number): boolean {
  if (!isAlive(pid)) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) STATE ...: comm may hold spaces and parentheses, so read after the last ')'.
    return stat.charAt(stat.lastIndexOf(')') + 2) === 'Z';
  } catch {
    return false;
  }
}

async function waitExited(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!exited(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** Stops a unit's agent for a restart: it stays in the mesh and its workloads keep running (see Agent.stop). */
export async function stopForRestart(d: Pick<Deployment, 'name'>, u: DeployedUnit): Promise<void> {
  if (u.ssh !== undefined) return stopRemoteForRestart(d, u);
  if (exited(u.pid)) return;
  // The agent alone, not its process group: workload daemons it started may share the group.
  try {
    process.kill(u.pid, 'SIGUSR2');
  } catch {
    return;
  }
  if (!(await waitExited(u.pid, STOP_GRACE_MS))) {
    signalGroup(u.pid, 'SIGKILL');
    await waitExit(u.pid, 5_000);
  }
}
