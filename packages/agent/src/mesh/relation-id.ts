/**
 * Names of relations: `SERVICE:ENDPOINT` references and the relation id of
 * two of them, the same on every agent whichever order they were given in.
 */
import { AgentError } from '../errors';

export interface EndpointRef {
  readonly service: string;
  readonly endpoint: string;
}

/** Parses `service:endpoint`. */
export function parseEndpointRef(text: unknown): EndpointRef {
  if (typeof text !== 'string' || !/^[a-z][a-z0-9-]{0,62}:[a-z][a-z0-9_-]{0,62}$/.test(text)) {
    throw new AgentError('AGENT_ERR_RELATE', `${JSON.stringify(text)} is not an endpoint; write SERVICE:ENDPOINT, e.g. datanode:namenode`);
  }
  const [service, endpoint] = text.split(':') as [string, string];
  return { service, endpoint };
}

/** The relation id of two endpoints: the same whichever order they are given in. */
export function relationIdOf(x: EndpointRef, y: EndpointRef): string {
  const [p, q] = [`${x.service}:${x.endpoint}`, `${y.service}:${y.endpoint}`].sort() as [string, string];
  const id = p === q ? p : `${p}~${q}`;
  if (id.length <= 128) return id;
  let h = 0;
  for (const c of id) h = (Math.imul(h, 31) + c.charCodeAt(0)) | 0;
  return `${id.slice(0, 110)}#${(h >>> 0).toString(16)}`;
}

