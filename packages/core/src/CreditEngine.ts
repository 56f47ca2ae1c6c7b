/**
 * The `CreditEngine` service: every credit operation as an Effect over {@link Storage}.
 *
 * Each operation decodes its input (InvalidRequest for anything malformed, including unknown
 * fields, with nothing changed), builds the transaction of its concept's rules (in `internal/`:
 * `holder.ts`, `lock.ts`, `modification.ts`, `limits.ts`, `customerUnlock.ts`) with its ids
 * minted once per call, and hands it to the one transaction core (`internal/transact.ts`), which
 * loads, plans at the `Clock`'s time, commits with a compare-and-set, settles lost replies by the
 * write's witness, and publishes.
 * Every write ends in exactly one of: applied (success), not applied (`StorageUnavailable`),
 * unknown (`OutcomeUnknown`). Every operation is traced with `Effect.withSpan` (span
 * `CreditEngine.<operation>`, attribute `creditlock.holder` or `creditlock.customer`) when a tracer
 * other than Effect's default is installed — by a layer (`@effect/opentelemetry`,
 * `Layer.setTracer`) or for one call (`Effect.withTracer`); under the default tracer, whose spans
 * go nowhere, no span is made.
 *
 * @module
 */
import { Context, type Duration, type Effect, Layer, type Queue, type Redacted, type Scope, type Stream } from "effect"
import type { CustomerLookup, UnlockCustomerResult } from "./CustomerUnlock.js"
import type {
  AmountOutOfRange,
  CreditLimitExceeded,
  CreditLocked,
  DuplicateCreditType,
  HolderNotFound,
  IdempotencyConflict,
  InsufficientCredit,
  InvalidRequest,
  LockExpired,
  LockKeyMismatch,
  LockNotHeld,
  OutcomeUnknown,
  StorageUnavailable,
  UnlockIncomplete,
  UnsupportedResource,
} from "./Errors.js"
import type { CreditEvent } from "./Events.js"
import type { CreditView, HolderRef, OpenHolderOptions, OpenResult } from "./Holder.js"
import { make } from "./internal/engine.js"
import { defaults } from "./internal/options.js"
import type { JournalPage, VerifyReport } from "./Journal.js"
import type { CreditLimitRequestInput, CreditLimitsView } from "./Limits.js"
import type { ExtendResult, LockOptions, LockResult, TryLockResult } from "./Lock.js"
import type { ModifyRequestInput, ModifyResult } from "./Modification.js"
import type { Storage } from "./Storage.js"

/**
 * Engine settings; every field has a default, and each is checked when the engine is built
 * (outside its range → InvalidRequest from the layer, naming the setting).
 */
export interface CreditEngineOptions {
  /** How long a lock lives: 1 ms to 24 hours (default 120 seconds). */
  readonly lockTtl?: Duration.DurationInput | undefined
  /**
   * The longest a lock may live from its grant, extensions included: from `lockTtl` to 24 hours
   * (default 10 minutes, or `lockTtl` when that is longer). `extendLock` never moves an expiry
   * past it.
   */
  readonly maxLockLifetime?: Duration.DurationInput | undefined
  /**
   * The secret from which the keys of locks granted under a reference are derived (see
   * `LockOptions.reference`): 32–1024 characters, never stored. Default: 256 random bits per
   * engine, so a retry finds its lock again only through the same engine; give every process of a
   * deployment the same secret (from a secret store) so a retry may reach any of them. Changing it
   * only makes retries of the locks live at that moment answer CreditLocked.
   */
  readonly lockKeySecret?: string | Redacted.Redacted<string> | undefined
  /** Attempts per operation when commits conflict, an integer 1–1000 (default 16), before StorageUnavailable. */
  readonly maxAttempts?: number | undefined
  /** Events kept for each slow subscriber before the oldest are dropped, an integer 1–1,000,000 (default 1024). */
  readonly eventBufferSize?: number | undefined
  /**
   * How long to keep trying to prove the outcome of a write whose reply was lost (reading its
   * witness, with back-off) before answering OutcomeUnknown: 0 to 5 minutes (default 5 seconds,
   * long enough for a Redis client to reconnect after a dropped connection). Wall-clock time.
   */
  readonly settleTimeout?: Duration.DurationInput | undefined
  /**
   * The snapshot cache (on by default; `false` switches it off). The engine keeps the last
   * snapshot it read or committed of up to `maxHolders` holders (an integer 1–10,000,000, default
   * 10,000; least recently used dropped first) and plans writes on it without loading first: the
   * compare-and-set on the holder's revision refuses a stale snapshot (Conflict), and the engine
   * then plans again on a fresh load, so a stale snapshot never commits. An answer that writes
   * nothing (a refusal, a replay, nothing to release) is checked again on a fresh load, except a
   * `CreditLocked` refusal planned on a snapshot younger than `maxAge` (0–60 seconds, default 50
   * ms, wall-clock; 0: never): a lock taken or released by another process (or engine) on the same storage
   * may be seen that much late. Within one engine, operations on one holder run one at a time
   * from load to commit (operations on different holders run in parallel), so contenders in one
   * process do not conflict with each other. Reads (`getCredit`, `journal`, `verify`, limits)
   * always load.
   */
  readonly snapshotCache?:
    | false
    | { readonly maxHolders?: number | undefined; readonly maxAge?: Duration.DurationInput | undefined }
    | undefined
}

/**
 * The defaults of {@link CreditEngineOptions}: locks live 120 seconds and at most 10 minutes with
 * extensions, 16 attempts on conflict, 1024 buffered events per subscriber, 5 seconds to settle a
 * lost reply, a snapshot cache of 10,000 holders whose `CreditLocked` refusals may be 50 ms old.
 */
export const DEFAULT_ENGINE_OPTIONS: {
  readonly lockTtl: Duration.Duration
  readonly maxLockLifetime: Duration.Duration
  readonly maxAttempts: number
  readonly eventBufferSize: number
  readonly settleTimeout: Duration.Duration
  readonly snapshotCache: { readonly maxHolders: number; readonly maxAge: Duration.Duration }
} = defaults

/** Options of `withLock`. */
export interface WithLockOptions {
  /**
   * How long to wait for a contended lock before answering CreditLocked: 0 (try once) to 24 hours
   * (default 30 seconds).
   */
  readonly wait?: Duration.DurationInput | undefined
}

/** A lock key as callers hold it: plain, or wrapped in `Redacted` so it is never logged. */
export type LockKeyInput = string | Redacted.Redacted<string>

/** Paging through a holder's journal. */
export interface JournalOptions {
  /** Entries with `seq` greater than this (default 0: from the start). */
  readonly after?: number | undefined
  /** Page size, 1–1000 (default 100). */
  readonly limit?: number | undefined
}

/** Options for `unlockCustomer`. */
export interface UnlockCustomerOptions {
  /** Journaled with each release (default "administrative customer unlock"). */
  readonly reason?: string | undefined
}

/** The failures of every write: not applied, or unknown. */
type WriteFailure = StorageUnavailable | OutcomeUnknown

/**
 * The credit engine. Every method validates its input (InvalidRequest, with nothing changed) and
 * fails only with the typed errors in its signature. A write fails with StorageUnavailable only
 * when it was not applied, and with OutcomeUnknown when it may have been.
 */
export class CreditEngine extends Context.Tag("@creditlock/core/CreditEngine")<
  CreditEngine,
  {
    /**
     * Opens a holder (idempotent), claiming `balanceGroupId` if given. A different balance group
     * for a holder that has one, or one another holder claimed → IdempotencyConflict.
     */
    readonly openHolder: (
      ref: HolderRef,
      options?: OpenHolderOptions,
    ) => Effect.Effect<OpenResult, InvalidRequest | IdempotencyConflict | WriteFailure>

    /** The holder's current credit, one entry per currency. */
    readonly getCredit: (
      ref: HolderRef,
    ) => Effect.Effect<CreditView, InvalidRequest | HolderNotFound | StorageUnavailable>

    /**
     * Grants a lock when the holder has no live lock; a live lock, held by anyone → CreditLocked.
     * With `options.reference`, a retry while the lock it granted lives returns that same lock.
     */
    readonly lock: (
      ref: HolderRef,
      options?: LockOptions,
    ) => Effect.Effect<LockResult, InvalidRequest | HolderNotFound | CreditLocked | WriteFailure>

    /**
     * `lock`, with the refusal as a value: a live lock in the way answers `{ granted: false,
     * expiresAt }` instead of failing with CreditLocked, for callers to whom contention is the
     * normal case (a polling worker, a bench). Every other failure is `lock`'s.
     */
    readonly tryLock: (
      ref: HolderRef,
      options?: LockOptions,
    ) => Effect.Effect<TryLockResult, InvalidRequest | HolderNotFound | WriteFailure>

    /**
     * Applies modifications all-or-nothing under the live lock with `key`, appending one journal
     * entry. With a `reference`, a retry of the same request returns the original result (even
     * after the lock is gone); a different request under the same reference → IdempotencyConflict.
     */
    readonly modify: (
      ref: HolderRef,
      key: LockKeyInput,
      request: ModifyRequestInput,
    ) => Effect.Effect<
      ModifyResult,
      | InvalidRequest
      | HolderNotFound
      | DuplicateCreditType
      | IdempotencyConflict
      | LockNotHeld
      | LockKeyMismatch
      | LockExpired
      | AmountOutOfRange
      | InsufficientCredit
      | CreditLimitExceeded
      | WriteFailure
    >

    /**
     * Moves the expiry of the live lock held with `key` to `ttl` from now (default: the engine's
     * `lockTtl`), never past the lock's grant plus `maxLockLifetime` and never earlier than it
     * already expires; publishes LockExtended when it moved. An expired lock is never revived
     * (LockExpired); another live lock → LockKeyMismatch; none → LockNotHeld. The fencing token is
     * unchanged. `ttl` outside 1 ms–24 h → InvalidRequest.
     */
    readonly extendLock: (
      ref: HolderRef,
      key: LockKeyInput,
      ttl?: Duration.DurationInput,
    ) => Effect.Effect<
      ExtendResult,
      InvalidRequest | HolderNotFound | LockNotHeld | LockKeyMismatch | LockExpired | WriteFailure
    >

    /**
     * Locks the holder, runs `use` with the lock, and releases it in every case (success, failure,
     * interruption). A contended lock is waited for at most `options.wait` (default 30 s; then
     * CreditLocked). Callers of one engine waiting for the same holder queue in the order they came
     * (a caller that finds others waiting joins behind them): only the first asks the storage
     * again — after a jittered back-off that never sleeps past the refusing lock's expiry, or at
     * once when this engine releases the lock — and the rest wait their turn. Callers in other
     * processes (or engines) compete through the storage, with back-off; plain `lock` and `tryLock`
     * calls do not queue. After
     * `use` succeeds, a lock that did not hold to the end is an error, not a success: it expired
     * meanwhile → LockExpired; an administrator released it → LockNotHeld. `use`'s own failure is
     * answered as it is. Interrupt the effect to give up (the lock is released).
     */
    readonly withLock: <A, E, R>(
      ref: HolderRef,
      use: (lock: LockResult) => Effect.Effect<A, E, R>,
      options?: WithLockOptions,
    ) => Effect.Effect<
      A,
      E | InvalidRequest | HolderNotFound | CreditLocked | LockExpired | LockNotHeld | WriteFailure,
      R
    >

    /** Releases the live lock held with `key`; no live lock → success; another key → LockKeyMismatch. */
    readonly unlock: (
      ref: HolderRef,
      key: LockKeyInput,
    ) => Effect.Effect<void, InvalidRequest | HolderNotFound | LockKeyMismatch | WriteFailure>

    /**
     * Releases every live lock on every holder of one customer, found by customer id,
     * subscription id or order id, journaling each release. Nothing found → HolderNotFound; a
     * lookup matching more than one customer → IdempotencyConflict, nothing unlocked. Each holder
     * is released atomically; when some cannot be, UnlockIncomplete lists those released and
     * those pending, and repeating the call releases the rest (it is idempotent).
     */
    readonly unlockCustomer: (
      lookup: CustomerLookup,
      options?: UnlockCustomerOptions,
    ) => Effect.Effect<
      UnlockCustomerResult,
      InvalidRequest | HolderNotFound | IdempotencyConflict | UnlockIncomplete | StorageUnavailable
    >

    /**
     * Sets the credit limits of one currency of the holder that claimed the balance group
     * `balanceGroupId` (BRM's request body; amounts in major units). Journaled; any armed
     * threshold the change finds reached is journaled and published. An unknown balance group →
     * HolderNotFound.
     */
    readonly setCreditLimits: (
      balanceGroupId: string,
      request: CreditLimitRequestInput,
    ) => Effect.Effect<
      CreditLimitsView,
      InvalidRequest | HolderNotFound | IdempotencyConflict | UnsupportedResource | AmountOutOfRange | WriteFailure
    >

    /** The stored limits of the holder with balance group `balanceGroupId`, and what is in force now. */
    readonly getCreditLimits: (
      balanceGroupId: string,
    ) => Effect.Effect<CreditLimitsView, InvalidRequest | HolderNotFound | IdempotencyConflict | StorageUnavailable>

    /** A page of the holder's journal, oldest first. */
    readonly journal: (
      ref: HolderRef,
      options?: JournalOptions,
    ) => Effect.Effect<JournalPage, InvalidRequest | HolderNotFound | StorageUnavailable>

    /** Checks the journal invariant of one holder (deltas sum to current values, no gaps). */
    readonly verify: (
      ref: HolderRef,
    ) => Effect.Effect<VerifyReport, InvalidRequest | HolderNotFound | StorageUnavailable>

    /** Lock and threshold events, published after their change is committed. */
    readonly events: Stream.Stream<CreditEvent>

    /** Subscribes to events within a scope; events published after this returns are delivered. */
    readonly subscribe: Effect.Effect<Queue.Dequeue<CreditEvent>, never, Scope.Scope>
  }
>() {
  /** The engine over the `Storage` in context; options outside their ranges fail the layer. */
  static readonly layer = (options: CreditEngineOptions = {}): Layer.Layer<CreditEngine, InvalidRequest, Storage> =>
    Layer.scoped(CreditEngine, make(options))
}
