/**
 * One durable record per relation message on each side, on the agent's own
 * durable state (fsync on): two agents in one process, related. Each value
 * the sender publishes costs one record in the sender's log, the commit of
 * the run that published it (which holds the link message and its sequence
 * number), and one in the receiver's, the commit of the run that applied it
 * (which holds the link position); acks and link stores write nothing.
 * Counted by reading the log files back, frame by frame.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { until } from '@rhizome/test-support';
import { Agent } from '../../src/index';
import { scanFrames } from '../../src/persistence/framing';

const CHARMS = join(import.meta.dirname, '../fixtures/charms');
const agents: Agent[] = [];
let base = '';

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  if (base) await rm(base, { recursive: true, force: true });
});

interface LogCount {
  /** Commit records. */
  commits: number;
  /** Commit records whose patches touch a link's send record (`@out/...`) or receive position (`@links`). */
  linkCommits: number;
  /** Link store records ('l'). */
  linkStore: number;
}

/** Counts the records in a unit's current log (no snapshot is taken here: snapshotEvery is far above the runs made). */
async function count(dataDir: string): Promise<LogCount> {
  const dir = join(dataDir, 'state');
  const logs = (await readdir(dir)).filter((f) => f.endsWith('.rlog'));
  expect(logs).toHaveLength(1);
  const { values } = scanFrames(await readFile(join(dir, logs[0]!)), logs[0]!);
  const out: LogCount = { commits: 0, linkCommits: 0, linkStore: 0 };
  for (const v of values as Array<{ t: string; p?: Array<{ path: unknown[] }> }>) {
    if (v.t === 'l') out.linkStore += 1;
    if (v.t !== 'c') continue;
    out.commits += 1;
    if (v.p?.some((p) => p.path[0] === 'relations' && typeof p.path[1] === 'string' && /^@(out\/|links$)/.test(p.path[1]))) out.linkCommits += 1;
  }
  return out;
}

describe('durable records per relation message (agent)', () => {
  it('one on the sender (the publishing run) and one on the receiver (the applying run)', async () => {
    base = await mkdtemp(join(tmpdir(), 'rz-records-'));
    const options = { fsync: true, absentGraceMs: 3_000 };
    const s = await Agent.start({ unit: 'sender/0', charmDir: join(CHARMS, 'counter-sender'), dataDir: join(base, 's0'), snapshotEvery: 100_000 }, options);
    agents.push(s);
    const r = await Agent.start({ unit: 'receiver/0', charmDir: join(CHARMS, 'counter-receiver'), dataDir: join(base, 'r0'), seeds: [s.gossipAddress], snapshotEvery: 100_000 }, options);
    agents.push(r);
    await until('both see each other', () => s.members().length === 2 && r.members().length === 2);
    await r.directory.relate('receiver:feed', 'sender:feed');
    // Published on the sender only (a user event would reach the receiver's engine too).
    const publish = (value: number) => void s.engine.submit({ kind: 'internal', name: 'user.count', payload: { value } });
    publish(1);
    await until('the first value arrived and both converged', () => r.facts()['last.sender-0'] === 1 && s.converged().ok && r.converged().ok);

    const before = { s: await count(join(base, 's0')), r: await count(join(base, 'r0')) };
    const MESSAGES = 10;
    for (let v = 2; v <= MESSAGES + 1; v++) {
      publish(v);
      await until(`value ${v} applied and acknowledged`, () => r.facts()['last.sender-0'] === v && s.converged().ok && r.converged().ok);
    }
    const after = { s: await count(join(base, 's0')), r: await count(join(base, 'r0')) };
    const delta = (side: 's' | 'r', k: keyof LogCount) => after[side][k] - before[side][k];
    expect({ sender: delta('s', 'linkCommits'), receiver: delta('r', 'linkCommits') }).toEqual({ sender: MESSAGES, receiver: MESSAGES });
    // Nothing else was written for them: no link store record, no second commit per message.
    expect({ sender: delta('s', 'commits'), receiver: delta('r', 'commits') }).toEqual({ sender: MESSAGES, receiver: MESSAGES });
    expect(after.s.linkStore + after.r.linkStore).toBe(0);
  }, 60_000);
});
