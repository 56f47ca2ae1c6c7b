/**
 * @creditlock/core: credit holders, pessimistic locks, modifications with an immutable journal,
 * as Effect programs over a pluggable `Storage` service, plus a Promise facade.
 *
 * @module
 */
export * from "./CreditEngine.js"
export * from "./Currency.js"
export * from "./CustomerUnlock.js"
export * from "./Errors.js"
export * from "./Events.js"
export * from "./Holder.js"
export * from "./Journal.js"
export * from "./Limits.js"
export * from "./Lock.js"
export * from "./Modification.js"
export * from "./PromiseFacade.js"
export * from "./Storage.js"
