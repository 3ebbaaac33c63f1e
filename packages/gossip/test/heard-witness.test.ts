import { VirtualClock } from '@rhizome/clock';
import { describe, expect, it } from 'vitest';
import { Awareness } from '../src/awareness';
import type { NodeContext } from '../src/internal/context';
import { MessageType, type Message } from '../src/internal/messages';
import { silentLogger } from '../src/logger';
import { DEFAULT_LAN_PROFILE } from '../src/options';
import { seededRandom } from '../src/prng';
import { Membership } from '../src/state';
import { newStats } from '../src/stats';

/** One Membership with a hand-driven context: which `heard` witnesses it re-gossips. */
function membership(): { ms: Membership; clock: VirtualClock; gossiped: string[] } {
  const clock = new VirtualClock();
  const gossiped: string[] = [];
  const ctx: NodeContext = {
    name: 'self',
    address: 'sim://self',
    clock,
    random: seededRandom(1),
    profile: DEFAULT_LAN_PROFILE,
    logger: silentLogger,
    awareness: new Awareness(DEFAULT_LAN_PROFILE.awarenessMaxMultiplier),
    stats: newStats(),
    send: () => {},
    numMembers: () => 1,
    running: () => true,
    gossipSoon: () => {},
    implausible: () => {},
  };
  const ms = new Membership(
    ctx,
    {
      emit: () => {},
      listens: () => false,
      broadcast: (key: string, msg: Message) => {
        if (msg.t === MessageType.Heard) gossiped.push(key.split('\u0000')[0] as string);
      },
      conflict: () => {},
    },
    {},
  );
  return { ms, clock, gossiped };
}

const heard = (ms: Membership, node: string): void => ms.heardWitness({ t: MessageType.Heard, node, inc: 1, from: 'w' });

describe('signs of life from suspects (heard witnesses)', () => {
  it('re-gossips a witness only when it is news, and forgets the least recently heard beyond 4,096 suspects', async () => {
    const { ms, clock, gossiped } = membership();
    const n = 4097;
    for (let i = 0; i < n; i++) {
      ms.aliveNode({ t: MessageType.Alive, node: `m${i}`, addr: `sim://m${i}`, inc: 1, tags: {} });
      ms.suspectNode({ t: MessageType.Suspect, node: `m${i}`, inc: 1, from: 'accuser', ev: false });
    }
    heard(ms, 'm0');
    heard(ms, 'm1');
    await clock.advance(10);
    heard(ms, 'm0'); // a repeat within half a suspicion timeout: not news, but m0 is now heard after m1
    expect(gossiped).toEqual(['m0', 'm1']);
    for (let i = 2; i < n; i++) heard(ms, `m${i}`); // the 4,097th name drops the least recently heard: m1
    expect(gossiped).toHaveLength(n);
    gossiped.length = 0;
    heard(ms, 'm0');
    heard(ms, 'm1');
    expect(gossiped).toEqual(['m1']);
    ms.shutdown();
  });
});
