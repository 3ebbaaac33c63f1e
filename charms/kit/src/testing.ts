/**
 * A UnitContext for scenario tests: a real directory, a logger that keeps
 * what it was told (tests can assert on it), and config merged the way the
 * agent merges it (charm defaults, then the deployment's options).
 */
import type { CharmLogger, UnitContext } from '@rhizome/agent';
import type { Json } from '@rhizome/engine';

export interface TestUnitOptions {
  /** Unit name, e.g. `datanode/0`. */
  readonly unit: string;
  /** The unit's working directory (must exist). */
  readonly dir: string;
  readonly address?: string;
  /** The charm's defaults. */
  readonly defaults?: Readonly<Record<string, Json>>;
  /** The deployment's options. */
  readonly options?: Readonly<Record<string, Json>>;
}

export interface TestUnit extends UnitContext {
  /** Every line logged, as `level: message`. */
  readonly logged: string[];
}

export function testUnit(opts: TestUnitOptions): TestUnit {
  const logged: string[] = [];
  const at =
    (level: string) =>
    (obj: object | string, msg?: string): void => {
      logged.push(`${level}: ${typeof obj === 'string' ? obj : `${msg ?? ''} ${JSON.stringify(obj)}`.trim()}`);
    };
  const log: CharmLogger = { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
  return {
    unit: opts.unit,
    service: opts.unit.split('/')[0] ?? opts.unit,
    dir: opts.dir,
    address: opts.address ?? '127.0.0.1',
    config: { ...opts.defaults, ...opts.options },
    log,
    logged,
  };
}
