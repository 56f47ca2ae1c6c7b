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
  Metric,
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
import type { LockOptions, TryLockResult } from "../Lock.js"
import * as Metrics from "../Metrics.js"
import { ModifyRequest, type ModifyRequestInput } from "../Modification.js"
import { holderKey, type LookupKey, Storage } from "../Storage.js"
import { adminUnlockTransaction, lookupKey, resolveCustomer } from "./customerUnlock.js"
import { openTransaction, requireOpen, view } from "./holder.js"
import { verifyJournal } from "./journal.js"
import { deriveLockKey, generateLockKey, hashLockKey, sha256 } from "./keys.js"
import { limitsView, setLimitsTransaction } from "./limits.js"
import { extendTransaction, lockTransaction, unlockTransaction } from "./lock.js"
import { checkDistinct, modifyTransaction } from "./modification.js"
import { durationSetting, validateOptions } from "./options.js"
import type { Transaction } from "./plan.js"
import { Id, Reference } from "./schemas.js"
import { annotate, traced as tracedAs } from "./tracing.js"
import { transact as runTransaction } from "./transact.js"
import { withLock as makeWithLock } from "./withLock.js"

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

/**
 * The tagged metric for `tags`, made once and reused: a tagged metric is a new metric key, whose
 * hash the registry computes again for every new key object.
 */
const taggedOnce = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>) => {
  const made = new Map<string, Metric.Metric<Type, In, Out>>()
  return (...tags: ReadonlyArray<readonly [string, string]>): Metric.Metric<Type, In, Out> => {
    const id = tags.map(([k, v]) => `${k}\u0000${v}`).join("\u0001")
    let tagged = made.get(id)
    if (tagged === undefined) {
      tagged = tags.reduce((m, [k, v]) => Metric.tagged(m, k, v), metric)
      made.set(id, tagged)
    }
    return tagged
  }
}

const operations = taggedOnce(Metrics.engineOperations)
const durations = taggedOnce(Metrics.engineOperationDuration)
const lockRefusals = taggedOnce(Metrics.engineLockRefusals)

/** Records an operation's outcome and duration (`Metrics`). */
const measured = <A, E, R>(operation: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    const started = performance.now()
    return Effect.onExit(effect, (exit) => {
      const outcome = outcomeOf(exit)
      const seconds = (performance.now() - started) / 1000
      return Effect.zipRight(
        Metric.increment(operations(["operation", operation], ["outcome", outcome])),
        Effect.zipRight(
          Metric.update(durations(["operation", operation]), seconds),
          lockReasons.has(outcome)
            ? Metric.increment(lockRefusals(["operation", operation], ["reason", outcome]))
            : Effect.void,
        ),
      )
    })
  })

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
const decodeLockOptions = decoder(Schema.Struct({ reference: Schema.optional(Reference) }), "lock options")
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

    // Every operation passes here once: its span, and its outcome and duration as metrics.
    const traced =
      (name: string) =>
      <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
        measured(name, tracedAs(`CreditEngine.${name}`)(effect))

    const withHolder = (ref: HolderRef) => annotate("creditlock.holder", holderKey(ref))

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

    const lock = (refIn: HolderRef, optionsIn: LockOptions = {}) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        const { reference } = yield* decodeLockOptions(optionsIn)
        yield* withHolder(ref)
        if (reference === undefined) {
          const key = generateLockKey()
          return yield* transact(lockTransaction(ref, Redacted.make(key), hashLockKey(key), settings.ttlMillis))
        }
        const holder = holderKey(ref)
        const keyFor = (nonce: string) => deriveLockKey(settings.lockKeySecret, holder, reference, nonce)
        const nonce = generateLockKey()
        const key = keyFor(nonce)
        return yield* transact(
          lockTransaction(ref, Redacted.make(key), hashLockKey(key), settings.ttlMillis, {
            hash: sha256(reference),
            nonce,
            keyFor,
          }),
        )
      }).pipe(traced("lock"))

    const tryLock = (refIn: HolderRef, optionsIn: LockOptions = {}) =>
      lock(refIn, optionsIn).pipe(
        Effect.map((granted): TryLockResult => ({ granted: true, ...granted })),
        Effect.catchTag("CreditLocked", (refused) =>
          Effect.succeed<TryLockResult>({ granted: false, expiresAt: refused.expiresAt }),
        ),
      )

    const modify = (refIn: HolderRef, keyIn: LockKeyInput, requestIn: ModifyRequestInput) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        const keyHash = hashLockKey(yield* decodeKey(keyText(keyIn)))
        const request = yield* Either.flatMap(decodeModify(requestIn), checkDistinct)
        yield* withHolder(ref)
        return yield* transact(modifyTransaction(ref, keyHash, request, randomUUID()))
      }).pipe(traced("modify"))

    const extendLock = (refIn: HolderRef, keyIn: LockKeyInput, ttlIn?: Duration.DurationInput) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        const keyHash = hashLockKey(yield* decodeKey(keyText(keyIn)))
        const ttlMillis = yield* durationSetting("ttl", ttlIn, Duration.millis(settings.ttlMillis), 1, 86_400_000)
        yield* withHolder(ref)
        // The target is fixed once per call, so every attempt (and the witness) aims at the same expiry.
        const until = (yield* Clock.currentTimeMillis) + ttlMillis
        return yield* transact(extendTransaction(ref, keyHash, until, settings.maxLifetimeMillis))
      }).pipe(traced("extendLock"))

    const unlock = (refIn: HolderRef, keyIn: LockKeyInput) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        const keyHash = hashLockKey(yield* decodeKey(keyText(keyIn)))
        yield* withHolder(ref)
        yield* transact(unlockTransaction(ref, keyHash))
      }).pipe(traced("unlock"))

    const withLock = makeWithLock({
      lock,
      release: (ref: HolderRef, key: string) => transact(unlockTransaction(ref, hashLockKey(key))),
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
