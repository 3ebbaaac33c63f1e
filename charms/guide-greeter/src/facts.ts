import * as z from 'zod';
import { defineFacts } from '@rhizome/engine';

/**
 * The greeter's facts, declared: `greeterFacts.fact('greeter.raedy')` is a
 * TypeScript error, and the agent refuses a value that does not match.
 */
export const greeterFacts = defineFacts({
  'greeter.ready': z.literal(true),
  'greeter.audience': z.array(z.string()),
});
