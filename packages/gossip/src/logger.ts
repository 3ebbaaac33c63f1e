/**
 * The logger a node writes through: the subset of pino's API we use, so a
 * pino logger (or a child of one) can be passed as is. Silent by default.
 */
export interface GossipLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const noop = (): void => {};

export const silentLogger: GossipLogger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });
