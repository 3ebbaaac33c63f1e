import { fileURLToPath } from 'node:url';
import { defineCharm, runAnsiblePlaybook } from '@rhizome/agent';
import { not, relationFact } from '@rhizome/engine';
import { relation } from '@rhizome/relations';
import { greeting } from '@rhizome-charms/guide-greeter/greeting';

const PLAYBOOK = fileURLToPath(new URL('./playbook/site.yml', import.meta.url));

export default defineCharm({
  metadata: {
    name: 'guide-listener',
    requires: { greeter: { interface: 'greeting' } },
  },
  interfaces: [greeting],
  handlers: (unit) => [
    {
      name: 'introduce',
      when: relationFact('greeter', 'joined'),
      run(ctx) {
        relation(ctx, 'greeter', greeting.requirer).publish({ name: unit.unit });
      },
    },
    {
      name: 'write-heard',
      when: relationFact('greeter', 'available'),
      async run(ctx) {
        const greetings = relation(ctx, 'greeter', greeting.requirer).all().map((g) => g.data);
        const result = await runAnsiblePlaybook({
          playbook: PLAYBOOK,
          extraVars: { unit_name: unit.unit, unit_dir: unit.dir, greetings },
          signal: ctx.signal, // stopped if the handler passes its deadline
        });
        ctx.set('listener.heard', Number(result.facts['heard']));
        ctx.setStatus('active', `heard ${greetings.length} greeting(s)`);
      },
    },
    {
      name: 'wait-for-greeter',
      when: not(relationFact('greeter', 'available')),
      run(ctx) {
        ctx.setStatus('blocked', 'waiting for a greeter');
      },
    },
  ],
});
