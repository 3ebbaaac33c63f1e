/**
 * @rhizome/gossip: SWIM + Lifeguard membership, user events and queries over
 * an encrypted WebSocket mesh (memberlist/Serf semantics). Simulation and
 * wire-level helpers for tests and benchmarks: `@rhizome/gossip/testing`.
 * Everything else under src/ is internal (the package exports only these).
 */
export { createNode, GossipNode } from './node';
export type { GossipNodeOptions, GossipEvents, NameConflict, SendEventOptions } from './node';
export { createWsTransport } from './ws-transport';
export type { WsTransport, WsTransportOptions, WsTransportStats } from './ws-transport';
export { Keyring, KeyringError } from './keyring';
export type { KeyInput, KeyringErrorCode } from './keyring';
export type { KeyManager, KeyResponse, KeyringChange, KeyOperation, KeyOperationOptions } from './key-manager';
export { warmUp } from './warm-up';
export type { WarmUpOptions, WarmUpReport } from './warm-up';
export { DEFAULT_LAN_PROFILE, DEFAULT_WAN_PROFILE, LOCAL_PROFILE, PROFILES, profileByName, resolveProfile } from './options';
export type { GossipProfile, ProfileName } from './options';
export type { Member, MemberStatus } from './member';
export type { Tags } from './internal/messages';
export type { UserEvent } from './user-events';
export type { QueryHandle, QueryOptions, QueryEvent, QueryResult, IncomingQuery, QueryResponder } from './queries';
export { GossipError, UnreachableError, MessageError } from './errors';
export type { GossipErrorCode, UnreachableReason, MessageErrorCode } from './errors';
export type { NodeStats, DropCounters } from './stats';
export type { RefusalSummary, RefusalCode } from './internal/refusals';
export type { GossipLogger } from './logger';
export type { Transport, TransportHandler, Address } from './transport';
/** Payload nesting limit for user events and queries, and its check (callers validate before sending). */
export { MAX_PAYLOAD_DEPTH, nestsDeeperThan } from './internal/codec';
/** Also on `/testing`; kept here for test/chaos.test.ts until it imports from there. */
export { seededRandom } from '@rhizome/clock';
