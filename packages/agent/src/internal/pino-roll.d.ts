/** Types for pino-roll 4 (it ships none): the part log-file.ts uses. */
declare module 'pino-roll' {
  import type { EventEmitter } from 'node:events';
  interface PinoRollOptions {
    /** Base path: 'dir/agent.log' writes dir/agent.1.log, dir/agent.2.log... */
    file: string;
    /** Bytes as a number of MB, or '10k' / '10m' / '1g'. */
    size?: string | number;
    frequency?: string | number;
    extension?: string;
    symlink?: boolean;
    /** Rolled files kept besides the current one. */
    limit?: { count?: number; removeOtherLogFiles?: boolean };
    dateFormat?: string;
    /** SonicBoom options. */
    mkdir?: boolean;
    mode?: number;
    sync?: boolean;
    minLength?: number;
  }
  /** A SonicBoom stream. */
  interface RollingStream extends EventEmitter {
    readonly file: string;
    write(chunk: string): boolean;
    flushSync(): void;
    end(): void;
    destroy(): void;
  }
  export default function pinoRoll(options: PinoRollOptions): Promise<RollingStream>;
}
