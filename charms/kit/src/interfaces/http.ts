/**
 * `http`: a web server offered to a load balancer (or any HTTP client).
 *
 * The web side (provides) publishes where it listens; the load-balancer
 * side (requires) may publish nothing.
 */
import * as z from 'zod';
import { defineInterface } from '@rhizome/relations';

export const http = defineInterface({
  name: 'http',
  version: '1.0.0',
  provides: z.object({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535),
  }),
  requires: z.object({}),
});

export type HttpWebData = z.output<typeof http.schemas.provides>;
