/**
 * @rhizome/gossip/testing: what tests and benchmarks need beyond the public
 * API. A simulated network on @rhizome/clock's VirtualClock (thousands of
 * real nodes in one process, seeded), a seeded PRNG, and the frame codec for tests that speak
 * the wire directly (fuzzers, outsiders, protocol versions).
 */
export { SimNetwork } from './sim-network';
export type { SimNetworkOptions, LinkConditions, SimNetworkStats } from './sim-network';
export { seededRandom } from './prng';
export { setLifeguard } from './node';
export type { Random } from './prng';
export { PROTOCOL_VERSION, PROTOCOL_VERSIONS, DEFAULT_MAX_FRAME_SIZE, MAX_LABEL_BYTES, FrameError, encodeFrames, decodeFrame } from './internal/codec';
export type { Envelope, FrameErrorCode, CodecOptions, VersionRange } from './internal/codec';
