/** What an embedder (and the tests) may tune in an Agent beyond its config file, and the defaults the agent runs with. */
import type { RetryOptions } from '@rhizome/engine';
import type { GossipProfile } from '@rhizome/gossip';
import type { RetransmitOptions } from '@rhizome/relations';
import type { LogFileOptions } from '../log/log-file';

export interface AgentOptions {
  /** fsync the state (default true; false only in tests that do not crash). */
  readonly fsync?: boolean;
  /** Gossip timing overrides on top of the config's profile (local, lan or wan). */
  readonly gossip?: Partial<GossipProfile>;
  /**
   * Warm the gossip code paths up at start, before joining (default false):
   * about 100 ms of CPU once, so that the first join runs warm JIT code
   * (see @rhizome/gossip warmUp). Off by default: it delayed an agent's
   * membership by its whole duration (~130 ms of a 450 ms start) and left
   * ~4 MB of optimized code resident, to speed up one push-pull.
   */
  readonly gossipWarmUp?: boolean;
  readonly retry?: Partial<RetryOptions>;
  readonly retransmit?: Partial<RetransmitOptions>;
  /** How long after start a unit absent from the mesh is not yet departed (default 10 s). */
  readonly absentGraceMs?: number;
  /** Debounce of file watches. */
  readonly watchDebounceMs?: number;
  /** How long a burst of relation events may gather before its run (see EngineOptions.burst). */
  readonly relationBurst?: { readonly quietMs: number; readonly maxMs: number };
  /** How long `stop()` waits for the current run before abandoning it (default 30 s). */
  readonly stopTimeoutMs?: number;
  /**
   * How long peers hold back this unit's departed when it stops for a
   * restart (`stop({ restart })`, an upgrade): a restart over SSH takes
   * seconds; a unit not back by then departs as any failed one (default
   * 60 s; peers cap it at 120 s).
   */
  readonly restartGraceMs?: number;
  /** agent.log rotation (default 10 MiB per file, 3 files). */
  readonly logFile?: LogFileOptions;
  /** How often refused frames and other repeated gossip warnings are summarised, one line per peer and kind (default 10 s). */
  readonly logSummaryIntervalMs?: number;
}

/**
 * Relation events gather until none came for 200 ms, at most 1.5 s: units of
 * a related service send their data within a few hundred ms of each other,
 * and one playbook run (seconds) for the burst beats one per unit.
 */
export const DEFAULT_RELATION_BURST = Object.freeze({ quietMs: 200, maxMs: 1_500 });

export const DEFAULT_AGENT_GOSSIP_TUNING: Partial<GossipProfile> = Object.freeze({
  // Relation declarations (~200 B) and `rhizome event` payloads travel as user events.
  userEventSizeLimit: 2048,
  // The directory query answers with every declaration of the deployment.
  queryResponseSizeLimit: 32 * 1024,
  querySizeLimit: 2048,
});
