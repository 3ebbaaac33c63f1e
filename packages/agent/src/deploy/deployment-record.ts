/**
 * The deployment record's shape (deployment.json): what deploy wrote about
 * each unit and machine. Types only, so modules that read records (the SSH
 * side in remote.ts) need not import deployment.ts, which loads them.
 */
import type { Json } from '@rhizome/engine';

export interface DeployedUnit {
  readonly unit: string;
  readonly service: string;
  readonly charmDir: string;
  /** The compiled charm the agent runs (charm/compile.ts), refreshed whenever the unit is (re)started. */
  charmModule?: string | undefined;
  readonly dataDir: string;
  readonly options: Readonly<Record<string, Json>>;
  /** The agent serves the dashboard here (bundle `dashboard:`, the agent config's field: `[HOST:]PORT`, 0 a free port). */
  readonly dashboard?: string | number | undefined;
  /** Last known process (0 when never started, or when that process died and its pid now belongs to another). */
  pid: number;
  /**
   * When `pid` started (clock ticks after boot, /proc/PID/stat), read when it
   * was recorded: the kernel hands a dead agent's pid to the next process,
   * and only pid + start time identify our agent (records written before
   * this field existed lack it).
   */
  pidStartTicks?: number | undefined;
  controlUrl: string;
  gossipAddress: string;
  /** 'running' until killed/stopped by the CLI. */
  state: 'running' | 'killed' | 'stopped';
  /** Machine id (bundle `to:`); absent for units started on this machine without placement. */
  machine?: string | undefined;
  /** The machine's SSH destination when it is not this machine: `pid`, `dataDir` and `controlUrl` are then the machine's. */
  ssh?: string | undefined;
  /** What restarts the agent when it dies: `rhizome-supervisor` (ours) or `systemd`; absent: nothing (a local unit). */
  supervisor?: 'rhizome-supervisor' | 'systemd' | undefined;
  /** A remote unit's agent module on its machine (`<dir>/cache/<sha>/agent.mjs`), for commands run there. */
  release?: string | undefined;
  /** A remote unit's supervisor pid (on its machine). */
  supervisorPid?: number | undefined;
  /** A remote unit's agent was alive when the record was last read (checked over SSH by readDeployment). */
  alive?: boolean | undefined;
  /** A remote unit's machine did not answer over SSH when the record was last read (so `alive` is not known). */
  unreachable?: boolean | undefined;
}

/** A machine of the deployment (bundle `machines:`, `rhizome add-machine`). */
export interface MachineRecord {
  readonly id: string;
  /** `user@host[:port]`; absent: this machine. */
  readonly ssh?: string | undefined;
  /** Where the deployment's units and the cached release live on the machine. */
  readonly dir?: string | undefined;
}

export interface Deployment {
  readonly name: string;
  readonly bundleFile: string;
  readonly home: string;
  readonly createdAt: number;
  units: Record<string, DeployedUnit>;
  relations: (readonly [string, string])[];
  /**
   * Per service, the next unit number to hand out. Numbers are never reused
   * (Juju's rule): peers may still hold links or departed entries of a
   * removed unit, which a new unit under its name would inherit.
   */
  nextUnit?: Record<string, number>;
  /** Machines by id (absent: every unit runs on this machine). */
  machines?: Record<string, MachineRecord>;
  /** The last machine id handed out (ids are never reused). */
  nextMachine?: number;
}
