export {};
export { PROTOCOL_VERSION, DEFAULT_MAX_FRAME_SIZE, FrameError, encodeFrames, decodeFrame } from './codec';
export type { Envelope, FrameErrorCode, CodecOptions } from './codec';
export { Keyring, KeyringError } from './keyring';
export type { KeyInput, KeyringErrorCode } from './keyring';
