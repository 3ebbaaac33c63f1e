import * as z from 'zod';
import { defineInterface } from '@rhizome/relations';

/** `greeting`: a greeter tells its listeners what to say; each listener says who it is. */
export const greeting = defineInterface({
  name: 'greeting',
  version: '1.0.0',
  provides: z.object({
    text: z.string().min(1),
    from: z.string().min(1),
  }),
  requires: z.object({
    name: z.string().min(1),
  }),
});
