import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineAction, defineCharm } from '@rhizome/agent';
import { all, relationFact } from '@rhizome/engine';
import { relation } from '@rhizome/relations';
import { z } from 'zod';
import { greeterFacts } from './src/facts';
import { greeting } from './src/greeting';

export default defineCharm({
  metadata: {
    name: 'guide-greeter',
    provides: { listeners: { interface: 'greeting' } },
  },
  interfaces: [greeting],
  facts: greeterFacts.schemas,
  config: { text: 'Hello' },
  actions: {
    // rhizome run greeter/0 greet name=ada times=2
    greet: defineAction({
      description: 'greet someone by name, up to three times',
      params: z.object({ name: z.string().min(1), times: z.number().int().min(1).max(3).default(1) }),
      run: (_ctx, params, unit) => ({ said: Array(params.times).fill(`${String(unit.config['text'])}, ${params.name}!`).join(' ') }),
    }),
  },
  handlers: (unit) => {
    const text = unit.config['text'];
    if (typeof text !== 'string' || text === '') {
      throw new Error(`option "text" must be a non-empty string, got ${JSON.stringify(text)}`);
    }
    return [
      {
        name: 'install',
        atStartup: true,
        async run(ctx) {
          await writeFile(join(unit.dir, 'greeting.txt'), `${text}\n`);
          ctx.set('greeter.ready');
          ctx.setStatus('active', `says "${text}"`);
        },
      },
      {
        name: 'greet-listeners',
        when: all(greeterFacts.fact('greeter.ready'), relationFact('listeners', 'joined')),
        run(ctx) {
          relation(ctx, 'listeners', greeting.provider).publish({ text, from: unit.unit });
        },
      },
      {
        name: 'count-listeners',
        when: all(greeterFacts.fact('greeter.ready'), relationFact('listeners', 'available')),
        run(ctx) {
          const names = relation(ctx, 'listeners', greeting.provider).all().map((l) => l.data.name);
          ctx.set('greeter.audience', names);
          ctx.setStatus('active', `says "${text}" to ${names.join(', ')}`);
        },
      },
    ];
  },
});
