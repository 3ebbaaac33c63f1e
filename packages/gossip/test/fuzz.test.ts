/**
 * Fuzz: at least 100,000 random and mutated frames into decodeFrame. Every
 * input must either decode to a well-formed envelope of plain data or be
 * rejected with a FrameError (never another exception, never a hang, never a
 * non-plain value). Seeded, so a failure prints a seed that replays it.
 */
import { describe, it, expect } from 'vitest';
import { Packr } from 'msgpackr';
import { DEFAULT_MAX_FRAME_SIZE, FrameError, PROTOCOL_VERSION, decodeFrame, encodeFrames } from '../src/internal/codec';
import type { Envelope } from '../src/internal/codec';
import { Keyring } from '../src/keyring';
import { corpusMessages, mulberry32, mutate, randomFrame } from './fixtures/fuzz-frames';

const SEED = Number(process.env['FUZZ_SEED'] ?? 0x5eed_2026);

function isPlain(v: unknown, depth = 0): boolean {
  if (depth > 40) return false;
  if (v === null || v === undefined) return true;
  switch (typeof v) {
    case 'boolean':
    case 'number':
    case 'string':
      return true;
    case 'object':
      if (v instanceof Uint8Array) return true;
      if (Array.isArray(v)) return v.every((x) => isPlain(x, depth + 1));
      if (Object.getPrototypeOf(v) !== Object.prototype) return false;
      return Object.values(v).every((x) => isPlain(x, depth + 1));
    default:
      return false;
  }
}

function checkEnvelope(env: Envelope): void {
  expect(env.v).toBe(PROTOCOL_VERSION);
  expect(typeof env.from).toBe('string');
  expect(env.from.length).toBeGreaterThan(0);
  expect(typeof env.addr).toBe('string');
  expect(Array.isArray(env.msgs)).toBe(true);
  expect(isPlain(env.msgs)).toBe(true);
}

describe('fuzz: decodeFrame', () => {
  it('rejects or cleanly decodes 100,000+ random and mutated frames (plaintext and encrypted)', () => {
    const rand = mulberry32(SEED);
    const keyring = new Keyring(Keyring.generateKey());
    const maxFrameSize = 4096;
    const plainOpts = { maxFrameSize };
    const sealedOpts = { maxFrameSize, keyring };
    const msgs = corpusMessages();
    const validPlain = [
      ...encodeFrames({ from: 'node-a', addr: '127.0.0.1:7946', msgs }, plainOpts),
      ...msgs.map((m) => encodeFrames({ from: 'node-b', addr: '127.0.0.1:7947', msgs: [m] }, plainOpts)[0]!),
    ];
    const validSealed = msgs.map(
      (m) => encodeFrames({ from: 'node-c', addr: '127.0.0.1:7948', msgs: [m] }, sealedOpts)[0]!,
    );
    const full = new Packr({ structuredClone: true, moreTypes: true, useRecords: true });

    const codes = new Map<string, number>();
    let decoded = 0;
    let sealedMutantsAccepted = 0;
    const ITER = 110_000;
    const t0 = performance.now();
    for (let i = 0; i < ITER; i++) {
      const kind = i % 5;
      let frame: Uint8Array;
      let opts: { maxFrameSize: number; keyring?: Keyring } = plainOpts;
      let sealedMutant = false;
      if (kind === 0) {
        frame = randomFrame(rand, full, maxFrameSize);
      } else if (kind === 1 || kind === 2) {
        frame = mutate(rand, validPlain[Math.floor(rand() * validPlain.length)]!, maxFrameSize);
      } else if (kind === 3) {
        const base = validSealed[Math.floor(rand() * validSealed.length)]!;
        frame = mutate(rand, base, maxFrameSize);
        opts = sealedOpts;
        sealedMutant = !Buffer.from(frame).equals(Buffer.from(base));
      } else {
        // Mixed: right bytes, wrong mode (plaintext to an encrypted node and back).
        const useSealed = rand() < 0.5;
        frame = useSealed
          ? validSealed[Math.floor(rand() * validSealed.length)]!
          : validPlain[Math.floor(rand() * validPlain.length)]!;
        opts = useSealed ? plainOpts : sealedOpts;
      }
      try {
        const env = decodeFrame(frame, opts);
        decoded++;
        if (sealedMutant) sealedMutantsAccepted++;
        checkEnvelope(env);
      } catch (e) {
        if (!(e instanceof FrameError)) {
          throw new Error(`seed ${SEED} iteration ${i}: non-FrameError ${String(e)} for ${Buffer.from(frame).toString('hex').slice(0, 200)}`);
        }
        codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
      }
    }
    const elapsed = performance.now() - t0;
    // Every rejection reason was exercised, and a mutated sealed frame never got through.
    for (const code of [
      'GOSSIP_ERR_FRAME_TOO_LARGE',
      'GOSSIP_ERR_MALFORMED_FRAME',
      'GOSSIP_ERR_VERSION',
      'GOSSIP_ERR_DECRYPT',
      'GOSSIP_ERR_PLAINTEXT_REFUSED',
      'GOSSIP_ERR_NO_KEYRING',
    ]) {
      expect(codes.get(code) ?? 0, code).toBeGreaterThan(0);
    }
    expect(sealedMutantsAccepted).toBe(0);
    expect(decoded).toBeGreaterThan(0); // some mutations leave a valid frame (e.g. a flipped payload bit)
    console.log(
      `fuzz seed=${SEED}: ${ITER} frames in ${elapsed.toFixed(0)} ms, decoded ${decoded}, rejected`,
      Object.fromEntries(codes),
    );
  });

  it('rejects frames above the default limit without looking inside', () => {
    const f = new Uint8Array(DEFAULT_MAX_FRAME_SIZE + 1);
    expect(() => decodeFrame(f, { maxFrameSize: DEFAULT_MAX_FRAME_SIZE })).toThrow(FrameError);
  });
});
