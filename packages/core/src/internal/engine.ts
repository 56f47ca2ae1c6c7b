/**
 * The engine behind the `CreditEngine` tag: decode → plan → transact for every operation, and
 * the event hub. `CreditEngine.layer` builds it.
 *
 * @internal
 */

import { randomUUID } from "node:crypto"
import {
  Cause,
  Clock,
  Duration,
  Effect,
  Either,
  Exit,
  Option,
  ParseResult,
  PubSub,
  Redacted,
  Schema,
  type Scope,
  Stream,
} from "effect"
import type {
  CreditEngine,
  CreditEngineOptions,
  JournalOptions,
  LockKeyInput,
  UnlockCustomerOptions,
} from "../CreditEngine.js"
import { CustomerLookup, type UnlockCustomerResult } from "../CustomerUnlock.js"
import { HolderNotFound, IdempotencyConflict, InvalidRequest, UnlockIncomplete } from "../Errors.js"
import type { CreditEvent } from "../Events.js"
import { HolderRef, OpenHolderOptions } from "../Holder.js"
import type { JournalEntry, JournalPage } from "../Journal.js"
import { CreditLimitRequest, type CreditLimitRequestInput } from "../Limits.js"
import type { LockOptions, LockState, TryLockResult } from "../Lock.js"
import { ModifyRequest, type ModifyRequestInput } from "../Modification.js"
import { holderKey, type LookupKey, Storage } from "../Storage.js"
import { adminUnlockTransaction, lookupKey, resolveCustomer } from "./customerUnlock.js"
import { fastKey, fastLockOptions, fastModify, fastRef, LockOptionsSchema, plainWith } from "./fastInput.js"
import { openTransaction, requireOpen, view } from "./holder.js"
import { verifyJournal } from "./journal.js"
import { deriveLockKey, generateLockKey, hashLockKey, sha256 } from "./keys.js"
import { limitsView, setLimitsTransaction } from "./limits.js"
import { extendTransaction, locked, lockTransaction, refusingLock, unlockTransaction } from "./lock.js"
import * as metrics from "./metrics.js"
import { record } from "./metrics.js"
import { checkDistinct, modifyTransaction } from "./modification.js"
import { durationSetting, validateOptions } from "./options.js"
import type { Transaction } from "./plan.js"
import { Id, LockKeyText, Reason } from "./schemas.js"
import { SnapshotCache } from "./snapshotCache.js"
import { annotate, defaultTracer, traced as tracedAs } from "./tracing.js"
import { transact as runTransaction } from "./transact.js"
import { LockQueue, withLock as makeWithLock } from "./withLock.js"

const lockReasons = new Set(["CreditLocked", "LockKeyMismatch", "LockNotHeld", "LockExpired"])

/** How an operation ended, as the `outcome` label: `ok`, a typed failure's tag, `interrupted` or `defect`. */
const outcomeOf = <A, E>(exit: Exit.Exit<A, E>): string => {
  if (Exit.isSuccess(exit)) return "ok"
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const error = failure.value as { readonly _tag?: unknown }
    return typeof error._tag === "string" ? error._tag : "failure"
  }
  return Cause.isInterruptedOnly(exit.cause) ? "interrupted" : "defect"
}

/** Records an operation's outcome and duration (`Metrics`). */
const measured = <A, E, R>(operation: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    const started = performance.now()
    return Effect.onExit(effect, (exit) =>
      Effect.sync(() => {
        const outcome = outcomeOf(exit)
        record(metrics.operations(operation, outcome), 1)
        record(metrics.operationDuration(operation), (performance.now() - started) / 1000)
        if (lockReasons.has(outcome)) record(metrics.lockRefusals(operation, outcome), 1)
      }),
    )
  })

const formatIssues = (issue: ParseResult.ParseIssue): string =>
  ParseResult.ArrayFormatter.formatIssueSync(issue)
    // String(): a path may hold a symbol key, which a template or join() would throw on.
    .map((issue) => (issue.path.length > 0 ? `${issue.path.map(String).join(".")}: ${issue.message}` : issue.message))
    .join("; ")

/**
 * Decodes `schema` synchronously into an Either (inputs are plain data, and this is on every
 * call's path), refusing unknown fields (a misspelt `reference` must not pass silently). With
 * `fast` (see `fastInput.ts`), an input it answers is taken as it answers it, and any other input
 * is decoded by the schema, which says what is wrong.
 */
const decoder = <A, I>(schema: Schema.Schema<A, I>, what: string, fast?: (input: unknown) => A | undefined) => {
  const decode = ParseResult.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })
  const full = (input: unknown): Either.Either<A, InvalidRequest> =>
    Either.mapLeft(decode(input), (error) => new InvalidRequest({ detail: `${what}: ${formatIssues(error)}` }))
  if (fast === undefined) return full
  return (input: unknown): Either.Either<A, InvalidRequest> => {
    const checked = fast(input)
    return checked === undefined ? full(input) : Either.right(checked)
  }
}

const decodeRef = decoder(HolderRef, "holder", fastRef)
const decodeOpenOptions = decoder(OpenHolderOptions, "options")
const decodeModify = decoder(ModifyRequest, "request", fastModify)
const decodeLockOptions = decoder(LockOptionsSchema, "lock options", fastLockOptions)
const decodeLookup = decoder(CustomerLookup, "lookup")
const decodeLimits = decoder(CreditLimitRequest, "request")
const decodeBalanceGroup = decoder(Id, "balance group id")
const decodeKey = decoder(LockKeyText, "lock key", fastKey)
const decodeUnlockOptions = decoder(
  Schema.Struct({
    reason: Schema.optional(Reason),
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
    const cache =
      settings.snapshotCache === null
        ? null
        : new SnapshotCache(settings.snapshotCache.maxHolders, settings.snapshotCache.maxAgeMillis)
    const context = { storage, hub, maxAttempts: settings.maxAttempts, settleMillis: settings.settleMillis, cache }
    const transact =
      (operation: string) =>
      <A, E>(tx: Transaction<A, E>) =>
        runTransaction(context, tx, operation)

    // Every operation passes here once: its span, and its outcome and duration as metrics.
    const traced =
      (name: string) =>
      <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
        measured(name, tracedAs(`CreditEngine.${name}`)(effect))

    const withHolder = (ref: HolderRef) => annotate("creditlock.holder", holderKey(ref))

    // Reads always load; what they read refreshes the cache.
    const loadHolder = (ref: HolderRef) =>
      Effect.suspend(() => {
        const asked = performance.now()
        return Effect.matchEffect(storage.load(ref), {
          onFailure: (error) => {
            // As in the transaction core: a failure may be a failover, after which no snapshot is sure.
            cache?.clear()
            return Effect.fail(error)
          },
          onSuccess: (stored) => {
            if (cache !== null && Option.isSome(stored)) cache.set(holderKey(ref), stored.value, asked)
            return requireOpen(ref, Option.getOrNull(stored))
          },
        })
      })

    const openHolder = (refIn: HolderRef, optionsIn: OpenHolderOptions = {}) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        const opts = yield* decodeOpenOptions(optionsIn)
        yield* withHolder(ref)
        return yield* transact("openHolder")(openTransaction(ref, opts, randomUUID()))
      }).pipe(traced("openHolder"))

    const getCredit = (refIn: HolderRef) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        yield* withHolder(ref)
        return view((yield* loadHolder(ref)).document)
      }).pipe(traced("getCredit"))

    const lock = (refIn: HolderRef, optionsIn: LockOptions = {}) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        const { reference } = yield* decodeLockOptions(optionsIn)
        yield* withHolder(ref)
        // Keys are minted only for a grant: a refused attempt (the common case under contention) mints none.
        if (reference === undefined) {
          return yield* transact("lock")(
            lockTransaction(ref, settings.ttlMillis, () => {
              const key = generateLockKey()
              return { key: Redacted.make(key), keyHash: hashLockKey(key) }
            }),
          )
        }
        const holder = holderKey(ref)
        const keyFor = (nonce: string) => deriveLockKey(settings.lockKeySecret, holder, reference, nonce)
        return yield* transact("lock")(
          lockTransaction(
            ref,
            settings.ttlMillis,
            () => {
              const nonce = generateLockKey()
              const key = keyFor(nonce)
              return { key: Redacted.make(key), keyHash: hashLockKey(key), nonce }
            },
            { hash: sha256(reference), keyFor },
          ),
        )
      }).pipe(traced("lock"))

    const tryLockPlanned = (refIn: HolderRef, optionsIn: LockOptions) =>
      lock(refIn, optionsIn).pipe(
        Effect.map((granted): TryLockResult => ({ granted: true, ...granted })),
        Effect.catchTag("CreditLocked", (refused) =>
          Effect.succeed<TryLockResult>({ granted: false, expiresAt: refused.expiresAt }),
        ),
      )

    /**
     * The refusal a cached snapshot answers alone, without a transaction: the holder's snapshot
     * is young enough (see `SnapshotCache`) and shows a live lock, and no operation of this engine
     * is running on the holder — one may be the release, and a tryLock that waits its turn behind
     * it is granted (answered from the snapshot instead, contenders in this process would only win
     * in the instant between a release and the holder's next lock, and could wait forever). Only a
     * plain ref whose key is cached qualifies (keys are cached from validated refs only, and ids
     * hold no `/`, so the ref is valid) and only without options.
     */
    const cachedRefusal = (refIn: unknown, optionsIn: unknown, now: number): LockState | null => {
      if (cache === null || !plainWith(optionsIn, 0) || !plainWith(refIn, 3)) return null
      const ref = refIn as Record<string, unknown>
      if (!Object.hasOwn(ref, "customerId") || !Object.hasOwn(ref, "holderType") || !Object.hasOwn(ref, "holderId")) {
        return null
      }
      const { customerId, holderType, holderId } = ref
      if (typeof customerId !== "string" || typeof holderType !== "string" || typeof holderId !== "string") return null
      const key = `${customerId}/${holderType}/${holderId}`
      if (cache.busy(key)) return null
      const cached = cache.get(key)
      if (cached === undefined || performance.now() - cached.at >= cache.maxAgeMillis) return null
      const refusing = refusingLock(cached.stored.document, now)
      if (refusing === null) return null
      record(metrics.operations("lock", "CreditLocked"), 1)
      record(metrics.operationDuration("lock"), 0)
      record(metrics.lockRefusals("lock", "CreditLocked"), 1)
      return refusing
    }

    // Contention is the common case of tryLock: a refusal a young snapshot shows is answered at
    // once (under a tracer, every call runs in full, so it has its span).
    const tryLock = (refIn: HolderRef, optionsIn: LockOptions = {}) =>
      Effect.tracerWith((tracer) =>
        tracer !== defaultTracer
          ? tryLockPlanned(refIn, optionsIn)
          : Effect.clockWith((clock) => {
              const refusing = cachedRefusal(refIn, optionsIn, clock.unsafeCurrentTimeMillis())
              return refusing === null
                ? tryLockPlanned(refIn, optionsIn)
                : Effect.succeed<TryLockResult>({ granted: false, expiresAt: new Date(refusing.expiresAt) })
            }),
      )

    const noOptions = {}
    // withLock's attempts: refused the same cheap way as tryLock's.
    const lockWaiting = (ref: HolderRef) =>
      Effect.tracerWith((tracer) =>
        tracer !== defaultTracer
          ? lock(ref)
          : Effect.clockWith((clock) => {
              const refusing = cachedRefusal(ref, noOptions, clock.unsafeCurrentTimeMillis())
              return refusing === null ? lock(ref) : Effect.fail(locked(refusing))
            }),
      )

    const modify = (refIn: HolderRef, keyIn: LockKeyInput, requestIn: ModifyRequestInput) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        const keyHash = hashLockKey(yield* decodeKey(keyText(keyIn)))
        const request = yield* Either.flatMap(decodeModify(requestIn), checkDistinct)
        yield* withHolder(ref)
        return yield* transact("modify")(modifyTransaction(ref, keyHash, request, randomUUID()))
      }).pipe(traced("modify"))

    const extendLock = (refIn: HolderRef, keyIn: LockKeyInput, ttlIn?: Duration.DurationInput) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        const keyHash = hashLockKey(yield* decodeKey(keyText(keyIn)))
        const ttlMillis = yield* durationSetting("ttl", ttlIn, Duration.millis(settings.ttlMillis), 1, 86_400_000)
        yield* withHolder(ref)
        // The target is fixed once per call, so every attempt (and the witness) aims at the same expiry.
        const until = (yield* Clock.currentTimeMillis) + ttlMillis
        return yield* transact("extendLock")(extendTransaction(ref, keyHash, until, settings.maxLifetimeMillis))
      }).pipe(traced("extendLock"))

    const unlock = (refIn: HolderRef, keyIn: LockKeyInput) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        const keyHash = hashLockKey(yield* decodeKey(keyText(keyIn)))
        yield* withHolder(ref)
        yield* release(ref, keyHash)
      }).pipe(traced("unlock"))

    /** Releases the lock with `keyHash`, and records how long it was held when it was. */
    const release = (ref: HolderRef, keyHash: string) =>
      Effect.tap(transact("unlock")(unlockTransaction(ref, keyHash)), (outcome) => {
        // No live lock with this key now (released, or it had ended): the next waiter may take it.
        lockQueue.released(holderKey(ref))
        return !outcome.released || outcome.last === null
          ? Effect.void
          : Effect.map(Clock.currentTimeMillis, (now) => {
              record(metrics.lockHold(), Math.max(0, now - (outcome.last as LockState).grantedAt) / 1000)
            })
      })

    const lockQueue = new LockQueue()
    const withLock = makeWithLock({
      lock: lockWaiting,
      release: (ref: HolderRef, key: string) => release(ref, hashLockKey(key)),
      queue: lockQueue,
    })

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
        yield* annotate("creditlock.customer", customerId)
        const holders =
          key.kind === "customer" ? matched : yield* lookupConfirmed({ kind: "customer", value: customerId })
        // Every holder is tried, whatever happens to the others; each release is atomic on its own.
        const outcomes = yield* Effect.forEach(
          holders,
          (holder) =>
            Effect.either(
              Effect.tap(transact("unlockCustomer")(adminUnlockTransaction(holder, reason, randomUUID())), () =>
                lockQueue.released(holderKey(holder)),
              ),
            ),
          { concurrency: 4 },
        )
        const released: Array<{ holder: HolderRef; entryId: string }> = []
        // Not released (nothing written), and perhaps released (sent, not confirmed): told apart.
        const pending: Array<HolderRef> = []
        const unknown: Array<HolderRef> = []
        outcomes.forEach((outcome, i) => {
          const holder = holders[i] as HolderRef
          if (Either.isLeft(outcome)) (outcome.left._tag === "OutcomeUnknown" ? unknown : pending).push(holder)
          else if (outcome.right !== null) released.push({ holder, entryId: outcome.right })
        })
        if (pending.length > 0 || unknown.length > 0) {
          return yield* new UnlockIncomplete({
            detail:
              `${released.length} holder(s) of customer ${customerId} were released, ${pending.length} were not ` +
              `(the storage failed) and ${unknown.length} may have been (the outcome is unknown); repeat the ` +
              "same call to release the rest",
            customerId,
            released,
            pending,
            unknown,
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
        return yield* transact("setCreditLimits")(setLimitsTransaction(ref, request, randomUUID()))
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

    return {
      openHolder,
      getCredit,
      lock,
      tryLock,
      modify,
      extendLock,
      withLock,
      unlock,
      unlockCustomer,
      setCreditLimits,
      getCreditLimits,
      journal,
      verify,
      events: Stream.fromPubSub(hub),
      subscribe: PubSub.subscribe(hub),
    }
  })
