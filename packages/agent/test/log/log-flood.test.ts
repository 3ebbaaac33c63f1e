/**
 * A stranger who can reach the gossip port cannot fill the disk through the
 * agent's log (issue 13 item 12): rejected frames are summarised per peer
 * and interval, and agent.log rotates at a size limit (pino-roll). Also: what
 * the agent keeps is readable by its user only (item 13).
 */
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createWsTransport, type WsTransport } from '@rhizome/gossip';
import { Agent } from '../../src/index';
import { summarizingLogger } from '../../src/internal/log-summary';
import { until } from '@rhizome/test-support';

const CHARMS = join(import.meta.dirname, '../fixtures/charms');
const agents: Agent[] = [];
const transports: WsTransport[] = [];
const dirs: string[] = [];

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hd-flood-'));
  dirs.push(d);
  return d;
}

const mode = async (p: string): Promise<string> => ((await stat(p)).mode & 0o777).toString(8);

afterEach(async () => {
  for (const t of transports.splice(0)) await t.close();
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('log flooding', () => {
  it('a flood of bad frames from a stranger keeps agent.log bounded and summarised', async () => {
    const base = await tmp();
    const maxBytes = 64 * 1024;
    const a = await Agent.start(
      { unit: 'faulty/0', charmDir: join(CHARMS, 'faulty'), dataDir: base },
      { fsync: false, gossipWarmUp: false, logFile: { maxBytes, files: 2 }, logSummaryIntervalMs: 300 },
    );
    agents.push(a);
    const attacker = await createWsTransport({ host: '127.0.0.1', port: 0 });
    transports.push(attacker);
    attacker.setHandler({ onFrame() {}, onUnreachable() {} });
    const FRAMES = 20_000;
    const before = a.node.stats().framesIn;
    const junk = Uint8Array.from([0x00, 0xc1, 0xc1, 0xc1]); // plaintext tag, then msgpack's never-used byte
    // One frame first: frames sent while the connection opens are queued (and the queue is bounded).
    attacker.send(a.gossipAddress, junk);
    await until('the first frame in', () => a.node.stats().framesIn - before >= 1);
    const BATCH = 250;
    for (let i = 1; i < FRAMES; i += BATCH) {
      for (let j = 0; j < BATCH; j++) attacker.send(a.gossipAddress, junk);
      await until(`${i + BATCH} frames in`, () => a.node.stats().framesIn - before >= i + BATCH, 10_000);
    }
    expect(a.status().unit).toBe('faulty/0'); // the agent still answers

    type Rec = { code?: string; total?: number; suppressed?: number; suppressedTotal?: number; msg?: string };
    const logs = join(base, 'logs');
    const readLogs = async (): Promise<{ files: string[]; total: number; refused: Rec[]; counted: number }> => {
      const files = await readdir(logs);
      let total = 0;
      let text = '';
      for (const f of files) {
        total += (await stat(join(logs, f))).size;
        text += await readFile(join(logs, f), 'utf8');
      }
      const records = text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Rec);
      const refused = records.filter((r) => r.code === 'GOSSIP_ERR_FRAMES_REFUSED' || /refused|dropped frame/.test(r.msg ?? ''));
      return { files, total, refused, counted: refused.reduce((n, r) => n + (r.total ?? 0) + (r.suppressedTotal ?? 0), 0) };
    };
    // Summaries come once per interval: wait for the one that counts most of the flood.
    const l = await until('summaries counting most of the refused frames', async () => {
      const got = await readLogs();
      return got.counted > FRAMES / 2 ? got : undefined;
    });
    // Unbounded, this was ~215 bytes a frame: 4 MB for 20,000 frames.
    expect(l.files.length).toBeLessThanOrEqual(2);
    expect(l.total).toBeLessThan(2 * maxBytes + 16 * 1024);
    // Frames are refused and counted; the log gets a few summary lines, not one line per frame.
    expect(l.refused.length).toBeGreaterThan(0);
    expect(l.refused.length).toBeLessThan(50);
    // agent.log names the current file.
    expect(await readlink(join(base, 'agent.log'))).toMatch(/^logs\/agent\.\d+\.log$/);
  }, 90_000);

  it('summaries stay at most two lines per peer and kind per interval, and a bounded number of groups', () => {
    const lines: { obj: object; msg: string }[] = [];
    const push = (obj: object, msg: string): void => void lines.push({ obj, msg });
    const log = summarizingLogger({ debug: push, info: push, warn: push, error: push }, { intervalMs: 60_000, maxGroups: 8 });
    try {
      for (let i = 0; i < 10_000; i++) log.warn({ code: 'GOSSIP_ERR_MALFORMED_FRAME', remote: `127.0.${i % 100}.1:${1000 + i}` }, 'gossip: dropped frame: bad');
      expect(lines.length).toBe(9); // 8 groups, then one overflow group
      log.flush();
      expect(lines.length).toBe(18);
      const suppressed = lines.slice(9).reduce((n, l) => n + ((l.obj as { suppressed?: number }).suppressed ?? 0), 0);
      expect(suppressed + 9).toBe(10_000);
      log.info({}, 'member joined');
      log.info({}, 'member joined');
      expect(lines.length).toBe(20); // info passes through
      // Counts carried by suppressed lines (a node's refused-frame summaries) are summed, not lost.
      log.warn({ code: 'GOSSIP_ERR_FRAMES_REFUSED', peer: '10.0.0.9', total: 500 }, 'gossip: refused 500 frame(s) from 10.0.0.9');
      log.warn({ code: 'GOSSIP_ERR_FRAMES_REFUSED', peer: '10.0.0.9', total: 700 }, 'gossip: refused 700 frame(s) from 10.0.0.9');
      log.flush();
      expect(lines.at(-1)?.obj).toMatchObject({ peer: '10.0.0.9', suppressed: 1, suppressedTotal: 700 });
    } finally {
      log.close();
    }
  });
});

describe('file modes', () => {
  it('data dir, unit dir, state, logs and token are private, also when the data dir existed with loose modes', async () => {
    const base = await tmp();
    const dataDir = join(base, 'unit-0');
    await mkdir(join(dataDir, 'unit'), { recursive: true, mode: 0o755 });
    await chmod(dataDir, 0o755);
    await chmod(join(dataDir, 'unit'), 0o755);
    await writeFile(join(dataDir, 'agent.out'), 'old output\n', { mode: 0o644 });
    await writeFile(join(dataDir, 'agent.log'), '{"old":true}\n', { mode: 0o644 });
    const old = process.umask(0o022);
    try {
      const a = await Agent.start({ unit: 'faulty/0', charmDir: join(CHARMS, 'faulty'), dataDir }, { fsync: false, gossipWarmUp: false });
      agents.push(a);
    } finally {
      process.umask(old);
    }
    for (const d of ['', 'unit', 'state', 'logs']) expect(`${d}: ${await mode(join(dataDir, d))}`).toBe(`${d}: 700`);
    for (const f of ['agent.out', 'agent.log', 'agent.log.old', 'control.token', 'control.json', 'agent.json']) {
      expect(`${f}: ${await mode(join(dataDir, f))}`).toBe(`${f}: 600`);
    }
    expect((await lstat(join(dataDir, 'agent.log'))).isSymbolicLink()).toBe(true);
    for (const f of await readdir(join(dataDir, 'state'))) expect(`state/${f}: ${await mode(join(dataDir, 'state', f))}`).toBe(`state/${f}: 600`);
  });
});
