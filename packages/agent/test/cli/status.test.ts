/**
 * `rhizome status`: the pure summary and renderers over hand-made cluster
 * states (error column, leader, down units, selectors, formats, colour). The
 * command against real agents is in operator-cli.test.ts.
 */
import { testSeed } from '@rhizome/test-support';
import Table from 'cli-table3';
import fc from 'fast-check';
import { createColors } from 'picocolors';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { AgentStatus } from '../../src/unit/api';
import { selectStatus, summarizeStatus, type ClusterStatus, type StatusSummary } from '../../src/cli/status/model';
import { borderless } from '../../src/cli/status/columns';
import { renderStatus, wantsColor } from '../../src/cli/status/render';

const ANSI = /\x1b\[/;

function agentStatus(unit: string, over: Partial<AgentStatus> = {}): AgentStatus {
  const service = unit.split('/')[0]!;
  return {
    unit,
    service,
    charm: `${service}-charm`,
    pid: 1,
    controlUrl: 'http://127.0.0.1:27101',
    gossipAddress: '127.0.0.1:27100',
    engine: { state: 'idle', queued: 0, runs: 3 },
    workload: { state: 'active', message: 'ready' },
    relations: [],
    members: { alive: 3, total: 4 },
    uptimeMs: 1000,
    ...over,
  };
}

const cluster: ClusterStatus = {
  deployment: 'shop',
  units: [
    { unit: 'web/1', service: 'web', up: true, status: agentStatus('web/1', { engine: { state: 'error', queued: 0, runs: 4, error: { handler: 'render', code: 'X', message: 'boom', event: 'config.changed', attempts: 3 } } }) },
    { unit: 'web/0', service: 'web', up: false, error: 'down' },
    { unit: 'web/2', service: 'web', up: true, status: agentStatus('web/2') },
    {
      unit: 'lb/0',
      service: 'lb',
      up: true,
      machine: 'ssh:ops@10.0.0.7',
      status: agentStatus('lb/0', {
        gossipAddress: '10.0.0.7:7946',
        workload: { state: 'blocked', message: 'no backends' },
        relations: [
          { id: 'r1', endpoint: 'backends', remoteService: 'web', remoteEndpoint: 'website', peer: false, established: true, units: [], departed: [], links: [], role: 'requires', interface: 'http' },
        ],
      }),
    },
  ],
};

describe('status summary and rendering (pure)', () => {
  const s = summarizeStatus(cluster);

  it('reads error in the workload column while the engine is in error, marks the leader, keeps down units', () => {
    const web1 = s.units.find((u) => u.unit === 'web/1')!;
    expect(web1).toMatchObject({ agent: 'error', workload: 'error', message: 'hook failed: render on config.changed (last: ready)', leader: true });
    expect(s.units.find((u) => u.unit === 'web/0')).toMatchObject({ up: false, agent: 'down', leader: false });
    expect(s.units.map((u) => u.unit)).toEqual(['lb/0', 'web/0', 'web/1', 'web/2']);
    expect(s.services.find((x) => x.name === 'web')).toMatchObject({ status: 'error', up: 2, scale: 3, charm: 'web-charm' });
    expect(s.services.find((x) => x.name === 'lb')).toMatchObject({ status: 'blocked', message: 'no backends' });
    expect(s.units.find((u) => u.unit === 'lb/0')).toMatchObject({ address: '10.0.0.7', ports: [7946, 27101], machine: 'ssh:ops@10.0.0.7' });
    expect(s.relations).toEqual([{ id: 'r1', provider: 'web:website', requirer: 'lb:backends', interface: 'http', kind: 'regular', state: 'joined', message: '' }]);
    expect(s.errors).toEqual([{ unit: 'web/1', state: 'error', handler: 'render', event: 'config.changed', attempts: 3, message: 'boom' }]);
  });

  it('selects by service, unit and state', () => {
    const byService = selectStatus(s, { patterns: ['lb'] });
    expect(byService.units.map((u) => u.unit)).toEqual(['lb/0']);
    expect(byService.relations).toHaveLength(1);
    expect(byService.errors).toEqual([]);
    expect(selectStatus(s, { patterns: ['web/2'] }).units.map((u) => u.unit)).toEqual(['web/2']);
    const errors = selectStatus(s, { states: ['error'] });
    expect(errors.units.map((u) => u.unit)).toEqual(['web/1']);
    expect(errors.services.map((x) => x.name)).toEqual(['web']);
    expect(selectStatus(s, { states: ['down', 'blocked'] }).units.map((u) => u.unit)).toEqual(['lb/0', 'web/0']);
  });

  it('table: sections, legend, the resolve hint; colour only when asked', async () => {
    const plainTable = await renderStatus(s, { format: 'table', now: new Date(0) });
    expect(plainTable).not.toMatch(ANSI);
    expect(plainTable).toMatch(/^Deployment +Members +Time\nshop +3\/4 +00:00:00Z/);
    expect(plainTable).toMatch(/web\/1\* +error +error +127\.0\.0\.1 +27100,27101 +local +hook failed: render on config\.changed/);
    expect(plainTable).toMatch(/web:website +lb:backends +http +regular +joined/);
    expect(plainTable).toMatch(/web\/1: error in handler render on config\.changed, 3 attempt\(s\): boom\n {2}fix the cause, then 'rhizome resolve web\/1'/);
    expect(plainTable).toMatch(/Legend: \* leader/);
    expect(await renderStatus(s, { format: 'table', color: true })).toMatch(ANSI);
    expect(wantsColor({ isTTY: true }, {})).toBe(true);
    expect(wantsColor({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(wantsColor({ isTTY: false }, {})).toBe(false);
    expect(wantsColor({ isTTY: false }, { FORCE_COLOR: '1' })).toBe(true);
  });

  it('plain: no borders or colour, # headers, one row per line for awk; json and yaml give the summary back', async () => {
    const plain = await renderStatus(s, { format: 'plain', color: true });
    expect(plain).not.toMatch(ANSI);
    expect(plain).not.toMatch(/[│┌─]/);
    const unitRows = plain.split('\n').filter((l) => /^[\w-]+\/\d+\*?\s/.test(l));
    expect(unitRows.map((l) => l.split(/\s+/).slice(0, 3))).toEqual([
      ['lb/0*', 'idle', 'blocked'],
      ['web/0', 'down', 'unknown'],
      ['web/1*', 'error', 'error'],
      ['web/2', 'idle', 'active'],
    ]);
    expect(plain).toMatch(/^# Unit +Agent +Workload/m);
    expect(JSON.parse(await renderStatus(s, { format: 'json' }))).toEqual(JSON.parse(JSON.stringify(s)));
    expect(parse(await renderStatus(s, { format: 'yaml' })) as StatusSummary).toEqual(JSON.parse(JSON.stringify(s)));
  });
});

describe('charm warnings (issue 13 item 7)', () => {
  it('shows a unit’s charm warnings after the errors, and keeps them through selectors', async () => {
    const warned: ClusterStatus = {
      units: [{ unit: 'kafka/0', service: 'kafka', up: true, status: agentStatus('kafka/0', { warnings: ["handler configure waits on fact 'kafka.instaled', which no run has ever set (a misspelling? ...)"] }) }],
    };
    const s = summarizeStatus(warned);
    expect(s.warnings).toEqual([{ unit: 'kafka/0', message: "handler configure waits on fact 'kafka.instaled', which no run has ever set (a misspelling? ...)" }]);
    const plain = await renderStatus(s, { format: 'plain', now: 0 } as never);
    expect(plain).toContain("kafka/0: charm warning: handler configure waits on fact 'kafka.instaled'");
    expect(selectStatus(s, { patterns: ['kafka'] }).warnings).toHaveLength(1);
    expect(selectStatus(s, { patterns: ['other'] }).warnings).toEqual([]);
    expect(summarizeStatus(cluster).warnings).toBeUndefined();
  });
});

describe('a split mesh', () => {
  it('says which units see fewer of the answering units alive; says nothing when all see all', async () => {
    const units = ['kv/0', 'kv/1', 'kv/2'];
    const view = (alive: (u: string) => number): ClusterStatus => ({
      deployment: 'kvd',
      units: units.map((u) => ({ unit: u, service: 'kv', up: true, status: agentStatus(u, { members: { alive: alive(u), total: 3 } }) })),
    });
    const split = summarizeStatus(view((u) => (u === 'kv/2' ? 1 : 2)));
    expect(split.meshSplit).toEqual([
      { unit: 'kv/0', alive: 2 },
      { unit: 'kv/1', alive: 2 },
      { unit: 'kv/2', alive: 1 },
    ]);
    const text = await renderStatus(split, { format: 'plain' });
    expect(text).toContain('mesh split: of the 3 units answering, kv/0 sees 2, kv/1 sees 2, kv/2 sees 1 alive');
    const whole = summarizeStatus(view(() => 3));
    expect(whole.meshSplit).toBeUndefined();
    expect(await renderStatus(whole, { format: 'plain' })).not.toContain('mesh split');
  });
});

describe('the borderless table (columns.ts)', () => {
  /** What status drew before columns.ts: cli-table3 with empty borders. */
  function cliTable3(rows: string[][]): string {
    const none = { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: ' ' };
    const t = new Table({ head: rows[0]!, chars: none, style: { head: [], border: [], compact: true, 'padding-left': 0, 'padding-right': 1 }, wordWrap: false });
    for (const r of rows.slice(1)) t.push(r);
    return t
      .toString()
      .split('\n')
      .map((l) => l.trimEnd())
      .join('\n');
  }

  it('draws what cli-table3 drew: colour codes, wide characters, emoji, several lines in a cell', () => {
    const c = createColors(true);
    // A cell as status makes them: a coloured state word, or plain text (a message may hold CJK, emoji or lines).
    const word = fc.stringMatching(/^[a-z][a-z0-9/.:-]{0,11}$/);
    const text = fc.array(fc.constantFrom('a', 'Z', '0', ' ', '-', '漢', '字', 'é', '😀', '\n'), { maxLength: 14 }).map((xs) => xs.join('').trim());
    const cell = fc.oneof(word, word.map((w) => c.green(w)), word.map((w) => c.bold(w)), text);
    const seed = testSeed('RHIZOME_COLUMNS_SEED', 'borderless table');
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }).chain((n) => fc.array(fc.array(cell, { minLength: n, maxLength: n }), { minLength: 1, maxLength: 6 })),
        (rows) => {
          expect(borderless(rows)).toBe(cliTable3(rows));
        },
      ),
      { seed, numRuns: 300 },
    );
  });

  it('aligns a wide-character message under its header', () => {
    const out = borderless([['Unit', 'Message'], ['web/0', '漢字 ready'], ['web/10', 'ok']]).split('\n');
    expect(out).toEqual(['Unit    Message', 'web/0   漢字 ready', 'web/10  ok']);
  });
});
