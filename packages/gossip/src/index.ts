export {};
export { PROTOCOL_VERSION, DEFAULT_MAX_FRAME_SIZE, FrameError, encodeFrames, decodeFrame } from './codec';
export type { Envelope, FrameErrorCode, CodecOptions } from './codec';
export { Keyring, KeyringError } from './keyring';
export type { KeyInput, KeyringErrorCode } from './keyring';
export { createWsTransport, DEFAULT_WS_TRANSPORT_OPTIONS } from './ws-transport';
export type { WsTransport, WsTransportOptions, WsTransportStats } from './ws-transport';
