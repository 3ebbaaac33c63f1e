/** `rhizome logs`, the pure half: durations, line format, step output, merging by time, unit selection. */
import { describe, expect, it } from 'vitest';
import { formatDuration, formatLogRecord, mergeByTime, selectUnits, TimeOrderedBuffer } from '../../src/cli/logs/format';
import type { LogRecord } from '../../src/log/log-tail';

describe('logs formatting', () => {
  it('prints durations in ms with a precision that fits', () => {
    expect(formatDuration(12.229424000000108)).toBe('12 ms');
    expect(formatDuration(3.4567)).toBe('3.5 ms');
    expect(formatDuration(0.0412)).toBe('0.04 ms');
    expect(formatDuration(7)).toBe('7 ms');
    expect(formatDuration(12_229.4)).toBe('12.23 s');
    expect(formatDuration(184_000)).toBe('3 min 4 s');
  });

  it('a run line: fields after the message, durations formatted, nothing the message already says', () => {
    const r: LogRecord = { level: 30, time: Date.UTC(2026, 0, 1, 10, 0, 0, 5), unit: 'web/0', runId: 'web/0-7', pid: 9, msg: 'run committed: user.count', event: 'user.count', attempt: 1, outcome: 'committed', durationMs: 12.229424000000108, handlers: ['a', 'b'], factsChanged: [] };
    expect(formatLogRecord(r)).toBe('10:00:00.005 INFO  web/0 [web/0-7] run committed: user.count  duration=12 ms handlers=[a b]');
  });

  it("an exec step's output is indented below its line; colour only when asked", () => {
    const r: LogRecord = { level: 40, time: 0, unit: 'lb/0', runId: 'lb/0-2', msg: 'exec sh failed: exited with code 2', stdout: 'one\ntwo\n', stderr: 'bad\n' };
    const text = formatLogRecord(r);
    expect(text.split('\n')).toEqual(['00:00:00.000 WARN  lb/0 [lb/0-2] exec sh failed: exited with code 2', '    | one', '    | two', '    ! bad']);
    expect(text).not.toMatch(/\x1b\[/);
    expect(formatLogRecord(r, { color: true })).toMatch(/\x1b\[/);
  });

  it('merges units by time and releases live lines in time order after the hold', () => {
    const rec = (unit: string, time: number): LogRecord => ({ level: 30, time, unit, msg: `${unit}@${time}` });
    expect(mergeByTime([[rec('a/0', 1), rec('a/0', 5)], [rec('b/0', 2), rec('b/0', 4)]]).map((r) => r.msg)).toEqual(['a/0@1', 'b/0@2', 'b/0@4', 'a/0@5']);
    const buf = new TimeOrderedBuffer(100, 3);
    expect(buf.push(rec('a/0', 1000))).toEqual([]);
    buf.push(rec('b/0', 950));
    buf.push(rec('c/0', 1080));
    expect(buf.release(1100).map((r) => r.msg)).toEqual(['b/0@950', 'a/0@1000']);
    expect(buf.push(rec('d/0', 1090))).toEqual([]);
    // bounded: beyond `max` held records, the oldest come out at once
    buf.push(rec('e/0', 1095));
    expect(buf.push(rec('f/0', 1099)).map((r) => r.msg)).toEqual(['c/0@1080']);
    expect(buf.drain().map((r) => r.msg)).toEqual(['d/0@1090', 'e/0@1095', 'f/0@1099']);
  });

  it('includes and excludes units by unit or service name', () => {
    const units = ['lb/0', 'web/0', 'web/1', 'db/0'];
    expect(selectUnits(units, [], [])).toEqual(units);
    expect(selectUnits(units, ['web'], [])).toEqual(['web/0', 'web/1']);
    expect(selectUnits(units, ['web', 'lb/0'], ['web/1'])).toEqual(['lb/0', 'web/0']);
    expect(selectUnits(units, [], ['web'])).toEqual(['lb/0', 'db/0']);
  });
});
