/**
 * @creditlock/core: credit holders, pessimistic locks, modifications with an immutable journal and
 * credit limits, as Effect programs over a pluggable `Storage` service, plus a Promise facade.
 *
 * This entry point is what a service using the engine needs. What an adapter needs to implement
 * `Storage` is at `@creditlock/core/storage`. The rules themselves (decisions, planners, the
 * transaction core) are internal: they are reached through the engine, never imported.
 *
 * @module
 */

/** The engine: the `CreditEngine` service (`CreditEngine.layer(options)`) and its settings. */
export {
  CreditEngine,
  type CreditEngineOptions,
  DEFAULT_ENGINE_OPTIONS,
  type JournalOptions,
  type LockKeyInput,
  type UnlockCustomerOptions,
  type WithLockOptions,
} from "./CreditEngine.js"
/** ISO 4217 currencies: codes, lookups, and major ↔ minor units. */
export {
  CurrencyCode,
  type CurrencyInfo,
  currencyByCode,
  currencyByNumeric,
  ISO_4217_PUBLISHED,
  isActiveCurrency,
  isListedNumeric,
  type MinorUnitsFailure,
  toMajorUnits,
  toMinorUnits,
} from "./Currency.js"
/** The administrative customer unlock: which customer, and what was released. */
export { CustomerLookup, type UnlockCustomerResult } from "./CustomerUnlock.js"
/** Every typed failure: one `Schema.TaggedError` per cause, with `status`, `title` and `code`. */
export {
  AmountOutOfRange,
  CreditEngineError,
  type CreditEngineErrorTag,
  CreditLimitExceeded,
  CreditLocked,
  DuplicateCreditType,
  Forbidden,
  HolderNotFound,
  IdempotencyConflict,
  InsufficientCredit,
  InvalidRequest,
  LockExpired,
  LockKeyMismatch,
  LockNotHeld,
  OutcomeUnknown,
  RateLimited,
  StorageUnavailable,
  Unauthorized,
  UnlockIncomplete,
  UnsupportedResource,
} from "./Errors.js"
/** Events published on `CreditEngine.events` after each committed change. */
export type {
  AdminUnlocked,
  CreditEvent,
  LockExpiredTakenOver,
  LockExtended,
  LockGranted,
  LockReleased,
  ThresholdCrossed,
} from "./Events.js"
/** Holders: how they are named, how they are opened, how their credit is shown. */
export {
  type Balance,
  Credit,
  type CreditView,
  HolderRef,
  HolderType,
  OpenHolderOptions,
  type OpenResult,
} from "./Holder.js"
/** The journal: entries, pages of them, and what `verify` reports. */
export type { Change, CurrencyCheck, JournalEntry, JournalKind, JournalPage, VerifyReport } from "./Journal.js"
/** Credit limits (BRM balance-group semantics): the request, and the limits as shown. */
export {
  CreditLimitRequest,
  type CreditLimitRequestInput,
  type CreditLimitsView,
  type LimitAmount,
  type ReachedThresholds,
  type ResourceLimits,
  type ResourceLimitsView,
  type TemporaryLimit,
  type ThresholdRecord,
} from "./Limits.js"
/** Locks: what `lock` grants. */
export type {
  ExtendedLock,
  ExtendResult,
  GrantedLock,
  LockOptions,
  LockRefused,
  LockResult,
  TryLockResult,
} from "./Lock.js"
/**
 * The engine's metrics (Effect `Metric`s): operations by name and outcome, durations, lock refusals,
 * commit conflicts and retries, lock waits and holds, threshold events.
 */
export {
  engineCommitConflicts,
  engineCommitRetries,
  engineLockHold,
  engineLockRefusals,
  engineLockWait,
  engineOperationDuration,
  engineOperations,
  engineThresholdEvents,
} from "./Metrics.js"
/** Modifications: the request `modify` takes and what it answers. */
export { Modification, ModifyRequest, type ModifyRequestInput, type ModifyResult } from "./Modification.js"
/** The Promise facade, for services that do not use Effect. */
export {
  type AsyncCreditEngine,
  type CreateCreditEngineOptions,
  CreditError,
  createCreditEngine,
  type PlainLockResult,
  type PlainTryLockResult,
} from "./PromiseFacade.js"
/** What the engine runs over: provide a `Storage` layer from an adapter (`@creditlock/memory`, …). */
export { Storage } from "./Storage.js"
