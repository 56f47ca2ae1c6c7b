/**
 * The `CreditEngine` service: every credit operation as an Effect over {@link Storage}.
 *
 * Each operation decodes its input (InvalidRequest for anything malformed, including unknown
 * fields, with nothing changed), builds the transaction of its concept module (`Holder.ts`,
 * `Lock.ts`, `Modification.ts`, `Limits.ts`, `CustomerUnlock.ts`) with its ids minted once per
 * call, and hands it to the one transaction core, which loads, plans at the `Clock`'s time,
 * commits with a compare-and-set, settles lost replies by the write's witness, and publishes.
 * Every write ends in exactly one of: applied (success), not applied (`StorageUnavailable`),
 * unknown (`OutcomeUnknown`). Every operation is traced with `Effect.withSpan`.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import {
  Clock,
  Context,
  Duration,
  Effect,
  Either,
  Layer,
  Option,
  ParseResult,
  PubSub,
  type Queue,
  Redacted,
  Schema,
  type Scope,
  Stream,
} from "effect"
import {
  adminUnlockTransaction,
  CustomerLookup,
  lookupKey,
  resolveCustomer,
  type UnlockCustomerResult,
} from "./CustomerUnlock.js"
import {
  type AmountOutOfRange,
  type CreditLimitExceeded,
  type CreditLocked,
  type DuplicateCreditType,
  HolderNotFound,
  IdempotencyConflict,
  type InsufficientCredit,
  InvalidRequest,
  type LockKeyMismatch,
  type LockNotHeld,
  type OutcomeUnknown,
  type StorageUnavailable,
  UnlockIncomplete,
  type UnsupportedResource,
} from "./Errors.js"
import type { CreditEvent } from "./Events.js"
import {
  type CreditView,
  HolderRef,
  holderKey,
  Id,
  OpenHolderOptions,
  type OpenResult,
  openTransaction,
  requireOpen,
  view,
} from "./Holder.js"
import { generateLockKey, hashLockKey } from "./internal/keys.js"
import { transact as runTransaction } from "./internal/transact.js"
import { type JournalEntry, type JournalPage, type VerifyReport, verifyJournal } from "./Journal.js"
import {
  CreditLimitRequest,
  type CreditLimitRequestInput,
  type CreditLimitsView,
  limitsView,
  setLimitsTransaction,
} from "./Limits.js"
import { DEFAULT_TTL_MILLIS, type LockResult, lockTransaction, unlockTransaction } from "./Lock.js"
import {
  checkDistinct,
  ModifyRequest,
  type ModifyRequestInput,
  type ModifyResult,
  modifyTransaction,
} from "./Modification.js"
import type { Transaction } from "./Plan.js"
import { type LookupKey, Storage } from "./Storage.js"

/**
 * Engine settings; every field has a default, and each is checked when the engine is built
 * (outside its range → InvalidRequest from the layer, naming the setting).
 */
export interface CreditEngineOptions {
  /** How long a lock lives: 1 ms to 24 hours (default 120 seconds). */
  readonly lockTtl?: Duration.DurationInput | undefined
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
}

/** The defaults of {@link CreditEngineOptions}. */
export const DEFAULT_ENGINE_OPTIONS = {
  lockTtl: Duration.millis(DEFAULT_TTL_MILLIS),
  maxAttempts: 16,
  eventBufferSize: 1024,
  settleTimeout: Duration.seconds(5),
} as const

/** The settings in force, checked. */
interface Settings {
  readonly ttlMillis: number
  readonly maxAttempts: number
  readonly eventBufferSize: number
  readonly settleMillis: number
}

const durationSetting = (
  name: string,
  input: unknown,
  fallback: Duration.Duration,
  min: number,
  max: number,
): Either.Either<number, InvalidRequest> => {
  // Duration clamps a negative number of milliseconds to zero; a negative setting is refused instead.
  const decoded =
    typeof input === "number" && !(input >= 0)
      ? Option.none()
      : Duration.decodeUnknown(input === undefined ? fallback : input)
  if (Option.isNone(decoded)) return Either.left(new InvalidRequest({ detail: `${name}: must be a duration` }))
  const millis = Duration.toMillis(decoded.value)
  if (!Number.isFinite(millis) || millis < min || millis > max) {
    return Either.left(
      new InvalidRequest({ detail: `${name}: must be between ${min} ms and ${max} ms, got ${String(millis)} ms` }),
    )
  }
  return Either.right(millis)
}

const integerSetting = (
  name: string,
  input: unknown,
  fallback: number,
  min: number,
  max: number,
): Either.Either<number, InvalidRequest> => {
  const value = input === undefined ? fallback : input
  return typeof value === "number" && Number.isInteger(value) && value >= min && value <= max
    ? Either.right(value)
    : Either.left(new InvalidRequest({ detail: `${name}: must be an integer from ${min} to ${max}` }))
}

const knownOptions = new Set(["lockTtl", "maxAttempts", "eventBufferSize", "settleTimeout"])

/** Checks engine options against their documented ranges. */
export const validateOptions = (options: CreditEngineOptions): Either.Either<Settings, InvalidRequest> =>
  Either.gen(function* () {
    if (typeof options !== "object" || options === null) {
      return yield* Either.left(new InvalidRequest({ detail: "engine options: must be an object" }))
    }
    const unknown = Object.keys(options).filter((k) => !knownOptions.has(k))
    if (unknown.length > 0) {
      return yield* Either.left(new InvalidRequest({ detail: `engine options: unknown option ${unknown.join(", ")}` }))
    }
    return {
      ttlMillis: yield* durationSetting("lockTtl", options.lockTtl, DEFAULT_ENGINE_OPTIONS.lockTtl, 1, 86_400_000),
      maxAttempts: yield* integerSetting("maxAttempts", options.maxAttempts, 16, 1, 1000),
      eventBufferSize: yield* integerSetting("eventBufferSize", options.eventBufferSize, 1024, 1, 1_000_000),
      settleMillis: yield* durationSetting(
        "settleTimeout",
        options.settleTimeout,
        DEFAULT_ENGINE_OPTIONS.settleTimeout,
        0,
        300_000,
      ),
    }
  })

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

    /** Grants a lock when the holder has no live lock; a live lock, held by anyone → CreditLocked. */
    readonly lock: (
      ref: HolderRef,
    ) => Effect.Effect<LockResult, InvalidRequest | HolderNotFound | CreditLocked | WriteFailure>

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
      | AmountOutOfRange
      | InsufficientCredit
      | CreditLimitExceeded
      | WriteFailure
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

const formatIssues = (issue: ParseResult.ParseIssue): string =>
  ParseResult.ArrayFormatter.formatIssueSync(issue)
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join(".")}: ${issue.message}` : issue.message))
    .join("; ")

const decoder = <A, I>(schema: Schema.Schema<A, I>, what: string) => {
  // Synchronous decoding into an Either: inputs are plain data, and this is on every call's path.
  // Unknown fields are refused (a misspelt `reference` must not pass silently).
  const decode = ParseResult.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })
  return (input: unknown): Either.Either<A, InvalidRequest> =>
    Either.mapLeft(decode(input), (error) => new InvalidRequest({ detail: `${what}: ${formatIssues(error)}` }))
}

const decodeRef = decoder(HolderRef, "holder")
const decodeOpenOptions = decoder(OpenHolderOptions, "options")
const decodeModify = decoder(ModifyRequest, "request")
const decodeLookup = decoder(CustomerLookup, "lookup")
const decodeLimits = decoder(CreditLimitRequest, "request")
const decodeBalanceGroup = decoder(Id, "balance group id")
// Messages never echo the value: a lock key is a secret, and error details get logged.
const decodeKey = decoder(
  Schema.String.annotations({ message: () => "must be a string" }).pipe(
    Schema.filter((key) => (key.length >= 1 && key.length <= 256) || "must be 1–256 characters"),
  ),
  "lock key",
)
const decodeUnlockOptions = decoder(
  Schema.Struct({
    reason: Schema.optional(
      Schema.String.pipe(
        Schema.filter((s) => s.trim().length > 0 || "must not be empty"),
        Schema.maxLength(1000, { message: () => "must be at most 1000 characters" }),
      ),
    ),
  }),
  "options",
)
const decodeJournalOptions = decoder(
  Schema.Struct({
    after: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { default: () => 0 }),
    limit: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 1000)), { default: () => 100 }),
  }),
  "journal options",
)

const keyText = (key: LockKeyInput): unknown => (Redacted.isRedacted(key) ? Redacted.value(key) : key)

/** Builds the engine over the `Storage` in context; the event hub lives as long as the scope. */
export const make = (
  options: CreditEngineOptions = {},
): Effect.Effect<CreditEngine["Type"], InvalidRequest, Storage | Scope.Scope> =>
  Effect.gen(function* () {
    const settings = yield* validateOptions(options)
    const storage = yield* Storage
    const hub = yield* Effect.acquireRelease(PubSub.sliding<CreditEvent>(settings.eventBufferSize), PubSub.shutdown)
    const context = { storage, hub, maxAttempts: settings.maxAttempts, settleMillis: settings.settleMillis }
    const transact = <A, E>(tx: Transaction<A, E>) => runTransaction(context, tx)

    const traced =
      (name: string) =>
      <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
        Effect.withSpan(effect, `CreditEngine.${name}`, { captureStackTrace: false })

    const withHolder = (ref: HolderRef) => Effect.annotateCurrentSpan("creditlock.holder", holderKey(ref))

    const loadHolder = (ref: HolderRef) =>
      Effect.flatMap(storage.load(ref), (stored) => requireOpen(ref, Option.getOrNull(stored)))

    const openHolder = (refIn: HolderRef, optionsIn: OpenHolderOptions = {}) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        const opts = yield* decodeOpenOptions(optionsIn)
        yield* withHolder(ref)
        return yield* transact(openTransaction(ref, opts, randomUUID()))
      }).pipe(traced("openHolder"))

    const getCredit = (refIn: HolderRef) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        yield* withHolder(ref)
        return view((yield* loadHolder(ref)).document)
      }).pipe(traced("getCredit"))

    const lock = (refIn: HolderRef) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        yield* withHolder(ref)
        const key = generateLockKey()
        return yield* transact(lockTransaction(ref, Redacted.make(key), hashLockKey(key), settings.ttlMillis))
      }).pipe(traced("lock"))

    const modify = (refIn: HolderRef, keyIn: LockKeyInput, requestIn: ModifyRequestInput) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        const keyHash = hashLockKey(yield* decodeKey(keyText(keyIn)))
        const request = yield* Either.flatMap(decodeModify(requestIn), checkDistinct)
        yield* withHolder(ref)
        return yield* transact(modifyTransaction(ref, keyHash, request, randomUUID()))
      }).pipe(traced("modify"))

    const unlock = (refIn: HolderRef, keyIn: LockKeyInput) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        const keyHash = hashLockKey(yield* decodeKey(keyText(keyIn)))
        yield* withHolder(ref)
        return yield* transact(unlockTransaction(ref, keyHash))
      }).pipe(traced("unlock"))

    /** Keeps the candidates of a lookup that really are indexed under `key` (indexes may be stale). */
    const confirm = (key: LookupKey, candidates: ReadonlyArray<HolderRef>) =>
      Effect.filter(
        candidates,
        (ref) =>
          Effect.gen(function* () {
            const stored = yield* storage.load(ref)
            if (Option.isNone(stored)) return false
            const { document } = stored.value
            switch (key.kind) {
              case "customer":
                return ref.customerId === key.value
              case "subscription":
                return ref.holderType === "contracts" && ref.holderId === key.value
              case "balanceGroup":
                return document.balanceGroupId === key.value
              case "order": {
                const byId = yield* storage.findEntry(ref, { id: key.value })
                if (Option.isSome(byId)) return true
                return Option.isSome(yield* storage.findEntry(ref, { reference: key.value }))
              }
            }
          }),
        { concurrency: 8 },
      )

    const lookupConfirmed = (key: LookupKey) =>
      Effect.flatMap(storage.lookup(key), (candidates) => confirm(key, candidates))

    const unlockCustomer = (lookupIn: CustomerLookup, optionsIn: UnlockCustomerOptions = {}) =>
      Effect.gen(function* () {
        const lookup = yield* decodeLookup(lookupIn)
        const reason = (yield* decodeUnlockOptions(optionsIn)).reason ?? "administrative customer unlock"
        const key = lookupKey(lookup)
        const matched = yield* lookupConfirmed(key)
        const customerId = yield* resolveCustomer(lookup, matched)
        yield* Effect.annotateCurrentSpan("creditlock.customer", customerId)
        const holders =
          key.kind === "customer" ? matched : yield* lookupConfirmed({ kind: "customer", value: customerId })
        // Every holder is tried, whatever happens to the others; each release is atomic on its own.
        const outcomes = yield* Effect.forEach(
          holders,
          (holder) => Effect.either(transact(adminUnlockTransaction(holder, reason, randomUUID()))),
          { concurrency: 4 },
        )
        const released: Array<{ holder: HolderRef; entryId: string }> = []
        const pending: Array<HolderRef> = []
        outcomes.forEach((outcome, i) => {
          const holder = holders[i] as HolderRef
          if (Either.isLeft(outcome)) pending.push(holder)
          else if (outcome.right !== null) released.push({ holder, entryId: outcome.right })
        })
        if (pending.length > 0) {
          return yield* new UnlockIncomplete({
            detail:
              `${released.length} holder(s) of customer ${customerId} were released and ${pending.length} could not be ` +
              "(the storage failed, or the outcome is unknown); repeat the same call to release the rest",
            customerId,
            released,
            pending,
          })
        }
        return { customerId, holders, released } satisfies UnlockCustomerResult
      }).pipe(traced("unlockCustomer"))

    /** The holder that claimed the balance group `id`. */
    const resolveBalanceGroup = (id: string) =>
      Effect.gen(function* () {
        const holders = yield* lookupConfirmed({ kind: "balanceGroup", value: id })
        const [only] = holders
        if (only === undefined) return yield* new HolderNotFound({ detail: `no holder has balance group "${id}"` })
        // Claims are unique; only an adapter that breaks its contract can answer several.
        if (holders.length > 1) {
          return yield* new IdempotencyConflict({
            detail: `balance group "${id}" is shared by ${holders.length} holders`,
          })
        }
        yield* withHolder(only)
        return only
      })

    const setCreditLimits = (balanceGroupIn: string, requestIn: CreditLimitRequestInput) =>
      Effect.gen(function* () {
        const balanceGroupId = yield* decodeBalanceGroup(balanceGroupIn)
        const request = yield* decodeLimits(requestIn)
        const ref = yield* resolveBalanceGroup(balanceGroupId)
        return yield* transact(setLimitsTransaction(ref, request, randomUUID()))
      }).pipe(traced("setCreditLimits"))

    const getCreditLimits = (balanceGroupIn: string) =>
      Effect.gen(function* () {
        const balanceGroupId = yield* decodeBalanceGroup(balanceGroupIn)
        const ref = yield* resolveBalanceGroup(balanceGroupId)
        const { document } = yield* loadHolder(ref)
        return limitsView(document, yield* Clock.currentTimeMillis, [])
      }).pipe(traced("getCreditLimits"))

    const journal = (refIn: HolderRef, optionsIn: JournalOptions = {}) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        const { after, limit } = yield* decodeJournalOptions(optionsIn)
        yield* withHolder(ref)
        const { document } = yield* loadHolder(ref)
        const entries = (yield* storage.journal(ref, { afterSeq: after, limit })).filter(
          (e) => e.seq <= document.journalSeq,
        )
        const last = entries.at(-1)
        const next = last !== undefined && last.seq < document.journalSeq ? last.seq : null
        return { entries, next } satisfies JournalPage
      }).pipe(traced("journal"))

    const verify = (refIn: HolderRef) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        yield* withHolder(ref)
        const { document } = yield* loadHolder(ref)
        // Entries up to the loaded journalSeq are exactly those committed with this snapshot.
        const entries: Array<JournalEntry> = []
        let afterSeq = 0
        while (afterSeq < document.journalSeq) {
          const page = yield* storage.journal(ref, { afterSeq, limit: 1000 })
          const wanted = page.filter((e) => e.seq <= document.journalSeq)
          entries.push(...wanted)
          const last = page.at(-1)
          if (last === undefined || wanted.length < page.length) break
          afterSeq = last.seq
        }
        return verifyJournal(document, entries)
      }).pipe(traced("verify"))

    return CreditEngine.of({
      openHolder,
      getCredit,
      lock,
      modify,
      unlock,
      unlockCustomer,
      setCreditLimits,
      getCreditLimits,
      journal,
      verify,
      events: Stream.fromPubSub(hub),
      subscribe: PubSub.subscribe(hub),
    })
  })
