/**
 * Facts, payloads and relation data are JSON: they are persisted with
 * msgpack, sent to peers and diffed as immer patches, so anything that does
 * not survive a JSON round trip (functions, cycles, undefined, NaN, class
 * instances) is refused where it enters, never discovered later on disk.
 */
import { EngineError } from './errors';

export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };
export type JsonObject = { readonly [key: string]: Json };

/** Throws ENGINE_ERR_NOT_JSON naming the offending path when `value` is not plain JSON. */
export function assertJson(value: unknown, what: string): asserts value is Json {
  const problem = findNonJson(value, what, new Set());
  if (problem !== undefined) {
    throw new EngineError('ENGINE_ERR_NOT_JSON', `${problem}. Facts, payloads and relation data must be plain JSON (null, booleans, finite numbers, strings, arrays, plain objects).`);
  }
}

function findNonJson(value: unknown, path: string, seen: Set<object>): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `${path} is ${String(value)}, which JSON cannot represent`;
    case 'undefined':
      return `${path} is undefined (use clear() to remove a fact, or null for "no value")`;
    case 'function':
      return `${path} is a function`;
    case 'bigint':
    case 'symbol':
      return `${path} is a ${typeof value}`;
    case 'object': {
      if (value === null) return undefined;
      if (seen.has(value)) return `${path} contains a cycle`;
      seen.add(value);
      try {
        if (Array.isArray(value)) {
          for (let i = 0; i < value.length; i++) {
            const p = findNonJson(value[i], `${path}[${i}]`, seen);
            if (p !== undefined) return p;
          }
          return undefined;
        }
        const proto = Object.getPrototypeOf(value) as unknown;
        if (proto !== Object.prototype && proto !== null) {
          return `${path} is a ${(value as object).constructor?.name ?? 'non-plain'} object`;
        }
        for (const [k, v] of Object.entries(value)) {
          const p = findNonJson(v, `${path}.${k}`, seen);
          if (p !== undefined) return p;
        }
        return undefined;
      } finally {
        seen.delete(value);
      }
    }
  }
}

/** Structural equality for JSON values; used so that writing an identical value is not a change. */
export function jsonEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return false;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i] as Json, b[i] as Json)) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ao = a as JsonObject;
  const bo = b as JsonObject;
  const ak = Object.keys(ao);
  if (ak.length !== Object.keys(bo).length) return false;
  for (const k of ak) {
    if (!Object.prototype.hasOwnProperty.call(bo, k)) return false;
    if (!jsonEqual(ao[k], bo[k])) return false;
  }
  return true;
}
