/**
 * @rhizome/relations: endpoints, interfaces, typed data bags, relation events
 * and exactly-once FIFO links. Charm authors need `defineInterface` and
 * `relation`; the agent wires a `RelationManager` to its engine, mesh and
 * store. Test helpers (runRelationScenario, the simulated link network) are
 * on `@rhizome/relations/testing`; the link machinery is in src/internal.
 */
export { RelationError, type RelationErrorCode } from './errors';
export { parseCharmMetadata, type CharmMetadata, type EndpointSpec, type EndpointRole } from './metadata';
export { defineInterface, InterfaceRegistry } from './interface';
export type { InterfaceDefinition, InterfaceInput, InterfaceSide, BagSchema, BagStatus, BagValidation } from './interface';
export { checkRelation, type ServiceEndpoint, type CheckedRelation } from './compat';
export { relationsModel } from './model';
export { relation } from './relation';
export type { RelationHandle, RelationDataError, RemoteBag, DepartingBag, PublishData, RelationScope } from './relation';
export type { DepartedPayload, DepartedBag } from './internal/departing';
export { asEndpointState, type EndpointState, type RelationRecord, type UnitView, type VersionedBag, type AppBag } from './state';
export { relationStatus, type RelationStatus, type UnitStatus } from './status';
export { RelationManager, DEFAULT_RETRANSMIT_OPTIONS, DEFAULT_RELATION_MANAGER_OPTIONS, RELATION_CREATED_EVENT, LINK_SYNC_EVENT } from './manager';
export type { RelationManagerOptions, RetransmitOptions, AddRelationSpec, AppliedInfo, LinkStatus } from './manager';
export type { LinkTransport } from './transport';
export { MemoryLinkStore, emptyLinkRecord, type LinkStore, type LinkRecord } from './link-store';
export { LINK_PROTOCOL, type LinkMessage, type LinkVersionRange } from './messages';
export type { PlausibilityBounds } from './internal/link-protocol';
