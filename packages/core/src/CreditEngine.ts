/**
 * The `CreditEngine` service: every credit operation as an Effect over {@link Storage}.
 *
 * Each operation loads a holder, decides with the pure functions of this package (reading time
 * from Effect's `Clock` once per attempt), and commits with a compare-and-set; on a conflict it
 * reloads and decides again, a bounded number of times with jittered back-off. Every operation is
 * traced with `Effect.withSpan`.
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
  Random,
  Redacted,
  Schema,
  type Scope,
  Stream,
} from "effect"
import { CustomerLookup, decideAdminUnlock, lookupKey, resolveCustomer } from "./CustomerUnlock.js"
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
  StorageUnavailable,
  type UnsupportedResource,
} from "./Errors.js"
import { type CreditEvent, type ThresholdCrossed, thresholdEvents } from "./Events.js"
import {
  type CreditView,
  decideOpen,
  encodeDocument,
  entryIndexKeys,
  HolderRef,
  holderIndexKeys,
  holderKey,
  Id,
  OpenHolderOptions,
  type StoredHolder,
  sameHolder,
  toCredit,
  view,
} from "./Holder.js"
import { generateLockKey, hashLockKey } from "./internal/keys.js"
import { type JournalEntry, type JournalPage, type VerifyReport, verifyJournal } from "./Journal.js"
import {
  CreditLimitRequest,
  type CreditLimitRequestInput,
  decideSetLimits,
  type ResourceLimitsView,
  resolveLimitRequest,
  viewLimits,
} from "./Limits.js"
import { DEFAULT_TTL_MILLIS, decideLock, decideUnlock } from "./Lock.js"
import {
  checkDistinct,
  decideModify,
  decideReplay,
  fingerprint,
  ModifyRequest,
  type ModifyRequestInput,
} from "./Modification.js"
import { type CommitRequest, type IndexKey, Storage } from "./Storage.js"

/** Engine settings; every field has a default. */
export interface CreditEngineOptions {
  /** How long a lock lives (default 120 seconds). */
  readonly lockTtl?: Duration.DurationInput | undefined
  /** Attempts per operation when commits conflict (default 16) before StorageUnavailable. */
  readonly maxAttempts?: number | undefined
  /** Events kept for each slow subscriber before the oldest are dropped (default 1024). */
  readonly eventBufferSize?: number | undefined
}

/** A lock key as callers hold it: plain, or wrapped in `Redacted` so it is never logged. */
export type LockKeyInput = string | Redacted.Redacted<string>

/** The result of opening a holder. */
export interface OpenResult {
  readonly holder: HolderRef
  readonly balanceGroupId: string
  /** False when the holder was open already (opening is idempotent). */
  readonly created: boolean
}

/** A granted lock: the key to present to `modify`/`unlock`, and when it expires. */
export interface GrantedLock {
  readonly key: Redacted.Redacted<string>
  readonly expiry: Date
}

/** The result of `lock`: the holder's current credit and the lock. */
export interface LockResult {
  readonly credit: CreditView
  readonly lock: GrantedLock
}

/** The result of `modify`: the holder's credit after it, and the journal entry that records it. */
export interface ModifyResult extends CreditView {
  readonly entryId: string
  /** True when this answers a retry of an already applied request (same reference). */
  readonly replayed: boolean
  /** Thresholds this modification crossed upward (also published on `events`). */
  readonly events: ReadonlyArray<ThresholdCrossed>
}

/** The result of `unlockCustomer`. */
export interface UnlockCustomerResult {
  readonly customerId: string
  /** Every holder of the customer. */
  readonly holders: ReadonlyArray<HolderRef>
  /** The holders whose live lock was released, with the journal entry recording each release. */
  readonly released: ReadonlyArray<{ readonly holder: HolderRef; readonly entryId: string }>
}

/** A holder's credit limits, per currency, with the effective limit at `at`. */
export interface CreditLimitsView {
  readonly holder: HolderRef
  readonly balanceGroupId: string
  readonly at: Date
  readonly limits: ReadonlyArray<ResourceLimitsView>
  /** Thresholds the change crossed (for `setCreditLimits`; empty for reads). */
  readonly events: ReadonlyArray<ThresholdCrossed>
}

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

/**
 * The credit engine. Every method validates its input (InvalidRequest, with nothing changed) and
 * fails only with the typed errors in its signature.
 */
export class CreditEngine extends Context.Tag("@creditlock/core/CreditEngine")<
  CreditEngine,
  {
    /** Opens a holder (idempotent). A different balance group for an open holder → IdempotencyConflict. */
    readonly openHolder: (
      ref: HolderRef,
      options?: OpenHolderOptions,
    ) => Effect.Effect<OpenResult, InvalidRequest | IdempotencyConflict | StorageUnavailable>

    /** The holder's current credit, one entry per currency. */
    readonly getCredit: (
      ref: HolderRef,
    ) => Effect.Effect<CreditView, InvalidRequest | HolderNotFound | StorageUnavailable>

    /** Grants a lock when the holder has no live lock; a live lock, held by anyone → CreditLocked. */
    readonly lock: (
      ref: HolderRef,
    ) => Effect.Effect<LockResult, InvalidRequest | HolderNotFound | CreditLocked | StorageUnavailable>

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
      | StorageUnavailable
    >

    /** Releases the live lock held with `key`; no live lock → success; another key → LockKeyMismatch. */
    readonly unlock: (
      ref: HolderRef,
      key: LockKeyInput,
    ) => Effect.Effect<void, InvalidRequest | HolderNotFound | LockKeyMismatch | StorageUnavailable>

    /**
     * Releases every live lock on every holder of one customer, found by customer id,
     * subscription id or order id, journaling each release. Nothing found → HolderNotFound; a
     * lookup matching more than one customer → IdempotencyConflict, nothing unlocked. Each holder
     * is released atomically; holders are released one after another.
     */
    readonly unlockCustomer: (
      lookup: CustomerLookup,
      options?: UnlockCustomerOptions,
    ) => Effect.Effect<UnlockCustomerResult, InvalidRequest | HolderNotFound | IdempotencyConflict | StorageUnavailable>

    /**
     * Sets the credit limits of one currency of the holder whose balance group is
     * `balanceGroupId` (BRM's request body; amounts in major units). Journaled; any percentage
     * threshold the change crosses is journaled and published. An unknown balance group →
     * HolderNotFound; one shared by several holders → IdempotencyConflict.
     */
    readonly setCreditLimits: (
      balanceGroupId: string,
      request: CreditLimitRequestInput,
    ) => Effect.Effect<
      CreditLimitsView,
      | InvalidRequest
      | HolderNotFound
      | IdempotencyConflict
      | UnsupportedResource
      | AmountOutOfRange
      | StorageUnavailable
    >

    /** The stored limits of the holder whose balance group is `balanceGroupId`, and what is in force now. */
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

    /** Lock events, published after their change is committed. */
    readonly events: Stream.Stream<CreditEvent>

    /** Subscribes to events within a scope; events published after this returns are delivered. */
    readonly subscribe: Effect.Effect<Queue.Dequeue<CreditEvent>, never, Scope.Scope>
  }
>() {
  /** The engine over the `Storage` in context. */
  static readonly layer = (options: CreditEngineOptions = {}): Layer.Layer<CreditEngine, never, Storage> =>
    Layer.scoped(CreditEngine, make(options))
}

/** What one attempt of an operation decided: a result, and the write (if any) that makes it true. */
interface Plan<A> {
  readonly result: A
  readonly write?: Omit<CommitRequest, "ref" | "expected">
  readonly events?: ReadonlyArray<CreditEvent>
}

const formatIssues = (issue: ParseResult.ParseIssue): string =>
  ParseResult.ArrayFormatter.formatIssueSync(issue)
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join(".")}: ${issue.message}` : issue.message))
    .join("; ")

const decoder = <A, I>(schema: Schema.Schema<A, I>, what: string) => {
  // Synchronous decoding into an Either: inputs are plain data, and this is on every call's path.
  const decode = ParseResult.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "ignore" })
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
const decodeReason = decoder(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(1000)), "reason")
const decodeJournalOptions = decoder(
  Schema.Struct({
    after: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { default: () => 0 }),
    limit: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 1000)), { default: () => 100 }),
  }),
  "journal options",
)

const keyText = (key: LockKeyInput): unknown => (Redacted.isRedacted(key) ? Redacted.value(key) : key)

/** Back-off sleeps are real time even under `TestClock`: contention is a wall-clock matter. */
const liveClock = Clock.make()

/** Builds the engine over the `Storage` in context; the event hub lives as long as the scope. */
export const make = (
  options: CreditEngineOptions = {},
): Effect.Effect<CreditEngine["Type"], never, Storage | Scope.Scope> =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const ttlMillis = Duration.toMillis(Duration.decode(options.lockTtl ?? Duration.millis(DEFAULT_TTL_MILLIS)))
    const maxAttempts = Math.max(1, options.maxAttempts ?? 16)
    const hub = yield* Effect.acquireRelease(
      PubSub.sliding<CreditEvent>(options.eventBufferSize ?? 1024),
      PubSub.shutdown,
    )

    const notFound = (ref: HolderRef) =>
      new HolderNotFound({
        detail: `holder ${ref.holderType}/${ref.holderId} of customer ${ref.customerId} was never opened`,
      })

    const requireHolder = (
      ref: HolderRef,
      stored: Option.Option<StoredHolder>,
    ): Effect.Effect<StoredHolder, HolderNotFound> =>
      Option.match(stored, { onNone: () => Effect.fail(notFound(ref)), onSome: Effect.succeed })

    const backoff = (attempt: number) =>
      attempt <= 2
        ? Effect.yieldNow()
        : Random.nextIntBetween(0, Math.min(2 ** attempt, 64)).pipe(
            Effect.flatMap((ms) => Effect.sleep(Duration.millis(ms))),
            Effect.withClock(liveClock),
          )

    /**
     * A commit that failed may still have been applied (the reply was lost). When the store
     * answers again and holds exactly the document we wrote at the next revision — and, when the
     * write appended journal entries, our first entry (its id is a fresh UUID, so a concurrent
     * decision that produced an identical document cannot pass for ours) — the commit happened;
     * otherwise the original failure stands.
     */
    const settleUnknownOutcome = (
      ref: HolderRef,
      expected: number | "absent",
      write: Omit<CommitRequest, "ref" | "expected">,
      error: StorageUnavailable,
    ): Effect.Effect<"committed", StorageUnavailable> =>
      Effect.gen(function* () {
        const stored = yield* storage.load(ref)
        const sameDocument =
          Option.isSome(stored) &&
          stored.value.revision === (expected === "absent" ? 1 : expected + 1) &&
          encodeDocument(stored.value.document) === encodeDocument(write.document)
        if (!sameDocument) return yield* error
        const [first] = write.entries
        if (first !== undefined && Option.isNone(yield* storage.findEntry(ref, { id: first.id }))) return yield* error
        return "committed" as const
      }).pipe(Effect.catchAll(() => Effect.fail(error)))

    /** Load → decide → compare-and-set commit, retried on conflict. */
    const transact = <A, E>(
      ref: HolderRef,
      decide: (stored: Option.Option<StoredHolder>, now: number) => Effect.Effect<Plan<A>, E>,
    ): Effect.Effect<A, E | StorageUnavailable> => {
      const attempt = (n: number): Effect.Effect<A, E | StorageUnavailable> =>
        Effect.gen(function* () {
          const stored = yield* storage.load(ref)
          const now = yield* Clock.currentTimeMillis
          const plan = yield* decide(stored, now)
          if (plan.write === undefined) return plan.result
          const expected = Option.match(stored, { onNone: () => "absent" as const, onSome: (s) => s.revision })
          const write = plan.write
          const outcome = yield* storage
            .commit({ ref, expected, ...write })
            .pipe(Effect.catchAll((error) => settleUnknownOutcome(ref, expected, write, error)))
          if (outcome === "committed") {
            if (plan.events !== undefined && plan.events.length > 0) yield* PubSub.publishAll(hub, plan.events)
            return plan.result
          }
          if (n >= maxAttempts) {
            return yield* new StorageUnavailable({
              detail: `gave up after ${maxAttempts} conflicting attempts on a contended holder; retry later`,
            })
          }
          yield* Effect.annotateCurrentSpan("creditlock.conflicts", n)
          yield* backoff(n)
          return yield* attempt(n + 1)
        })
      return attempt(1)
    }

    const traced =
      (name: string) =>
      <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
        Effect.withSpan(effect, `CreditEngine.${name}`, { captureStackTrace: false })

    const withHolder = (ref: HolderRef) => Effect.annotateCurrentSpan("creditlock.holder", holderKey(ref))

    const openHolder = (refIn: HolderRef, optionsIn: OpenHolderOptions = {}) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        const opts = yield* decodeOpenOptions(optionsIn)
        yield* withHolder(ref)
        if (opts.balanceGroupId !== undefined) {
          // An explicit balance group is a claim: another holder that already answers to it would
          // make it ambiguous for every limit call. (Two opens racing on the same new alias can
          // still both succeed; lookups then answer IdempotencyConflict rather than guess.)
          const owners = yield* lookupConfirmed({ kind: "balanceGroup", value: opts.balanceGroupId })
          if (owners.some((owner) => !sameHolder(owner, ref))) {
            return yield* new IdempotencyConflict({
              detail: `balance group "${opts.balanceGroupId}" already belongs to another holder`,
            })
          }
        }
        return yield* transact(ref, (stored, now) =>
          Effect.map(
            decideOpen(Option.getOrNull(Option.map(stored, (s) => s.document)), ref, opts, now, randomUUID()),
            (decision): Plan<OpenResult> => {
              const result = { holder: ref, balanceGroupId: decision.document.balanceGroupId }
              if (decision._tag === "AlreadyOpen") return { result: { ...result, created: false } }
              return {
                result: { ...result, created: true },
                write: {
                  document: decision.document,
                  entries: [decision.entry],
                  index: [...holderIndexKeys(decision.document), ...entryIndexKeys([decision.entry])],
                },
              }
            },
          ),
        )
      }).pipe(traced("openHolder"))

    const loadHolder = (ref: HolderRef) => Effect.flatMap(storage.load(ref), (stored) => requireHolder(ref, stored))

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
        const keyHash = hashLockKey(key)
        return yield* transact(ref, (stored, now) =>
          Effect.gen(function* () {
            const { document } = yield* requireHolder(ref, stored)
            const grant = yield* decideLock(document, now, keyHash, ttlMillis)
            const at = new Date(now)
            const expiresAt = new Date(grant.lock.expiresAt)
            const events: Array<CreditEvent> = []
            if (grant.tookOver !== null) {
              events.push({
                _tag: "LockExpiredTakenOver",
                holder: ref,
                at,
                expiredAt: new Date(grant.tookOver.expiresAt),
              })
            }
            events.push({ _tag: "LockGranted", holder: ref, at, expiresAt, tookOver: grant.tookOver !== null })
            return {
              result: { credit: view(grant.document), lock: { key: Redacted.make(key), expiry: expiresAt } },
              write: { document: grant.document, entries: [], index: [] },
              events,
            } satisfies Plan<LockResult>
          }),
        )
      }).pipe(traced("lock"))

    const modify = (refIn: HolderRef, keyIn: LockKeyInput, requestIn: ModifyRequestInput) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        const keyHash = hashLockKey(yield* decodeKey(keyText(keyIn)))
        const request = yield* Effect.flatMap(decodeModify(requestIn), checkDistinct)
        yield* withHolder(ref)
        const print = fingerprint(request)
        return yield* transact(ref, (stored, now) =>
          Effect.gen(function* () {
            const { document } = yield* requireHolder(ref, stored)
            if (request.reference !== undefined) {
              const earlier = yield* storage.findEntry(ref, { reference: request.reference })
              if (Option.isSome(earlier)) {
                const original = yield* decideReplay(earlier.value, print)
                return { result: replayOf(document.balanceGroupId, original) } satisfies Plan<ModifyResult>
              }
            }
            const decision = yield* decideModify({
              document,
              now,
              keyHash,
              request,
              fingerprint: print,
              entryId: randomUUID(),
            })
            const events = thresholdEvents(decision.entry)
            return {
              result: { ...view(decision.document), entryId: decision.entry.id, replayed: false, events },
              events,
              write: {
                document: decision.document,
                entries: [decision.entry],
                index: entryIndexKeys([decision.entry]),
              },
            } satisfies Plan<ModifyResult>
          }),
        )
      }).pipe(traced("modify"))

    const unlock = (refIn: HolderRef, keyIn: LockKeyInput) =>
      Effect.gen(function* () {
        const ref = yield* decodeRef(refIn)
        const keyHash = hashLockKey(yield* decodeKey(keyText(keyIn)))
        yield* withHolder(ref)
        return yield* transact(ref, (stored, now) =>
          Effect.gen(function* () {
            const { document } = yield* requireHolder(ref, stored)
            const decision = yield* decideUnlock(document, now, keyHash)
            if (decision._tag === "Nothing") return { result: undefined } satisfies Plan<void>
            return {
              result: undefined,
              write: { document: decision.document, entries: [], index: [] },
              events: [{ _tag: "LockReleased", holder: ref, at: new Date(now) }],
            } satisfies Plan<void>
          }),
        )
      }).pipe(traced("unlock"))

    /** Keeps the candidates of a lookup that really are indexed under `key` (indexes may be stale). */
    const confirm = (key: IndexKey, candidates: ReadonlyArray<HolderRef>) =>
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

    const lookupConfirmed = (key: IndexKey) =>
      Effect.flatMap(storage.lookup(key), (candidates) => confirm(key, candidates))

    const unlockCustomer = (lookupIn: CustomerLookup, optionsIn: UnlockCustomerOptions = {}) =>
      Effect.gen(function* () {
        const lookup = yield* decodeLookup(lookupIn)
        const reason = yield* decodeReason(optionsIn.reason ?? "administrative customer unlock")
        const key = lookupKey(lookup)
        const matched = yield* lookupConfirmed(key)
        const customerId = yield* resolveCustomer(lookup, matched)
        yield* Effect.annotateCurrentSpan("creditlock.customer", customerId)
        const holders =
          key.kind === "customer" ? matched : yield* lookupConfirmed({ kind: "customer", value: customerId })
        const released: Array<{ holder: HolderRef; entryId: string }> = []
        for (const holder of holders) {
          const entryId = yield* transact(holder, (stored, now) =>
            Effect.sync((): Plan<string | null> => {
              if (Option.isNone(stored)) return { result: null }
              const decision = decideAdminUnlock(stored.value.document, now, randomUUID(), reason)
              if (decision === null) return { result: null }
              return {
                result: decision.entry.id,
                write: {
                  document: decision.document,
                  entries: [decision.entry],
                  index: entryIndexKeys([decision.entry]),
                },
                events: [{ _tag: "AdminUnlocked", holder, at: new Date(now), entryId: decision.entry.id }],
              }
            }),
          )
          if (entryId !== null) released.push({ holder, entryId })
        }
        return { customerId, holders, released } satisfies UnlockCustomerResult
      }).pipe(traced("unlockCustomer"))

    /** The one holder whose balance-group alias is `id`. */
    const resolveBalanceGroup = (id: string) =>
      Effect.gen(function* () {
        const holders = yield* lookupConfirmed({ kind: "balanceGroup", value: id })
        const [only] = holders
        if (only === undefined) return yield* new HolderNotFound({ detail: `no holder has balance group "${id}"` })
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
        return yield* transact(ref, (stored, now) =>
          Effect.gen(function* () {
            const { document } = yield* requireHolder(ref, stored)
            const change = yield* resolveLimitRequest(request, now)
            const decision = decideSetLimits(document, change, now, randomUUID())
            const events = thresholdEvents(decision.entry)
            return {
              result: {
                holder: ref,
                balanceGroupId: document.balanceGroupId,
                at: new Date(now),
                limits: viewLimits(decision.document, now),
                events,
              },
              write: {
                document: decision.document,
                entries: [decision.entry],
                index: entryIndexKeys([decision.entry]),
              },
              events,
            } satisfies Plan<CreditLimitsView>
          }),
        )
      }).pipe(traced("setCreditLimits"))

    const getCreditLimits = (balanceGroupIn: string) =>
      Effect.gen(function* () {
        const balanceGroupId = yield* decodeBalanceGroup(balanceGroupIn)
        const ref = yield* resolveBalanceGroup(balanceGroupId)
        const { document } = yield* loadHolder(ref)
        const now = yield* Clock.currentTimeMillis
        return {
          holder: ref,
          balanceGroupId: document.balanceGroupId,
          at: new Date(now),
          limits: viewLimits(document, now),
          events: [],
        } satisfies CreditLimitsView
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

const replayOf = (balanceGroupId: string, original: JournalEntry): ModifyResult => ({
  holder: original.holder,
  balanceGroupId,
  current: { credit: toCredit(original.balances ?? []) },
  entryId: original.id,
  replayed: true,
  events: thresholdEvents(original),
})
