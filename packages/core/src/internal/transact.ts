/**
 * The transaction core: the one loop every write of the engine runs through.
 *
 * load → plan → commit → settle → back-off → publish. With the engine's snapshot cache (see
 * `snapshotCache.ts`) the first attempt plans on the cached snapshot instead of loading, inside
 * the holder's gate; a conflict on it drops the entry and plans again on a load, and an answer
 * that writes nothing is re-checked on a load (but a young `CreditLocked`). A commit answers Committed (publish and
 * answer), Conflict (reload and plan again, a bounded number of times with jittered back-off),
 * Claimed (an alias belongs to another holder: refuse), or fails:
 * - `StorageUnavailable`: the write was not applied. With no earlier lost reply, that is the answer.
 * - `OutcomeUnknown`: the write may have been applied. The core then reads until it can prove what
 *   happened, with bounded back-off for at most `settleMillis` (wall-clock): the witness found →
 *   the write landed, answer as if it had been acknowledged; the holder's revision moved past the
 *   lost commit's expected revision → that commit can never land, so planning again is safe; the
 *   revision unchanged → it may still land, so the core plans again at the same revision (ids and
 *   witness are minted once per call, so whichever of the two commits lands, the witness shows it
 *   and the other conflicts). A refusal, or a result that needs no write, is only answered once
 *   every lost commit is fenced: if one could still land, the core first commits the unchanged
 *   document at the revision it expects, so it never will.
 *
 * A lock grant's witness (its key hash in the holder) does not survive a release or an expiry, so
 * a lost grant (or extension) whose holder changed meanwhile is answered `OutcomeUnknown`. One settle window per
 * call, from its first lost reply, keeps every call bounded.
 *
 * When no proof can be read in time, the answer is `OutcomeUnknown`. So an applied write is never
 * reported as not applied, and "not applied" is only said when it is proven.
 *
 * @internal
 */

import { Clock, Duration, Effect, Either, Option, PubSub, Random } from "effect"
import { OutcomeUnknown, StorageUnavailable } from "../Errors.js"
import type { CreditEvent } from "../Events.js"
import type { JournalEntry } from "../Journal.js"
import { type ExpectedRevision, holderKey, type Storage, type StoredHolder } from "../Storage.js"
import { extendedExpiry, isLive } from "./lock.js"
import * as metrics from "./metrics.js"
import { record } from "./metrics.js"
import type { Plan, Snapshot, Transaction, Witness } from "./plan.js"
import type { SnapshotCache } from "./snapshotCache.js"
import { annotate } from "./tracing.js"

/** What the core needs from the engine. */
export interface TransactContext {
  readonly storage: Storage["Type"]
  readonly hub: PubSub.PubSub<CreditEvent>
  /** Attempts when commits conflict, before StorageUnavailable. */
  readonly maxAttempts: number
  /** How long (wall-clock ms) to keep trying to prove the outcome of a lost commit. */
  readonly settleMillis: number
  /** Snapshots to plan on and per-holder gates (see `snapshotCache.ts`); null: every attempt loads. */
  readonly cache: SnapshotCache | null
}

/** Back-off sleeps and settle deadlines are real time even under `TestClock`: I/O is a wall-clock matter. */
const liveClock = Clock.make()

const liveNow = Effect.sync(() => liveClock.unsafeCurrentTimeMillis())

const sleepLive = (millis: number) => Effect.sleep(Duration.millis(millis)).pipe(Effect.withClock(liveClock))

/** Jittered exponential back-off for conflicts: a yield for the first two, then up to 64 ms. */
const conflictBackoff = (attempt: number) =>
  attempt <= 2 ? Effect.yieldNow() : Effect.flatMap(Random.nextIntBetween(0, Math.min(2 ** attempt, 64)), sleepLive)

/** Jittered back-off between proof reads: 10 ms doubling to 500 ms, never past the deadline. */
const settleBackoff = (round: number, deadline: number) =>
  Effect.gen(function* () {
    const cap = Math.min(10 * 2 ** round, 500)
    const jittered = yield* Random.nextIntBetween(Math.ceil(cap / 2), cap + 1)
    const left = deadline - (yield* liveNow)
    if (left > 0) yield* sleepLive(Math.min(jittered, left))
  })

const revisionOf = (stored: StoredHolder | null): ExpectedRevision => (stored === null ? "absent" : stored.revision)

/** Whether the witness shows in what was read; for `Entry`, `entry` is the lookup of its id. */
const witnessed = (witness: Witness, stored: StoredHolder | null, entry: JournalEntry | null, now: number) => {
  switch (witness._tag) {
    case "Entry":
      return entry !== null
    case "Lock":
      return stored !== null && stored.document.lock?.keyHash === witness.keyHash
    case "Released": {
      const lock = stored?.document.lock ?? null
      return stored !== null && !(isLive(lock, now) && lock.keyHash === witness.keyHash)
    }
    case "Extended": {
      const lock = stored?.document.lock ?? null
      return (
        lock !== null &&
        lock.keyHash === witness.keyHash &&
        lock.expiresAt >= extendedExpiry(lock, witness.until, witness.capMillis)
      )
    }
  }
}

/** Runs one transaction to its answer; see the module comment. */
export const transact = <A, E>(
  context: TransactContext,
  tx: Transaction<A, E>,
  /** The operation's name, as the metrics' `operation` label. */
  operation: string,
): Effect.Effect<A, E | StorageUnavailable | OutcomeUnknown> => {
  const { storage, hub, maxAttempts, settleMillis, cache } = context
  // `tx.witness` is read only once a reply was lost: a lock's key is minted when a grant is planned.
  const { ref } = tx
  const key = cache === null ? "" : holderKey(ref)

  // Expected revisions of commits this call sent whose outcome is not known yet.
  const lost: Array<ExpectedRevision> = []
  let lastLost: Plan<A> | null = null
  let deadline = 0
  let settleRound = 0
  /** The revision at which the last fence was answered Conflict (null: none yet). */
  let fenceRefusedAt: number | null = null
  let conflicts = 0
  // Set when conflicts ran out while a lost commit was unsettled: one last proof read, then answer.
  let exhausted = false
  let lastFailure: StorageUnavailable | OutcomeUnknown | null = null
  // Set when the next read must load, not plan on the cache.
  let mustLoad = cache === null

  const unknown = (): OutcomeUnknown => {
    const witness = tx.witness
    const entryId = witness._tag === "Entry" ? witness.id : undefined
    return new OutcomeUnknown({
      detail:
        "the write was sent to the storage but its outcome could not be confirmed: it may or may not have been " +
        (entryId === undefined
          ? "applied; read the holder again before retrying"
          : `applied; retry with the same reference (Idempotency-Key), or look for journal entry ${entryId}`),
      ...(entryId === undefined ? {} : { entryId }),
      ...(lastFailure === null ? {} : { cause: lastFailure }),
    })
  }

  const gaveUp = () =>
    new StorageUnavailable({
      detail: `gave up after ${maxAttempts} conflicting attempts on a contended holder; nothing was changed; retry later`,
    })

  const publish = (events: ReadonlyArray<CreditEvent>) => {
    if (events.length === 0) return Effect.void
    for (const event of events) if (event._tag === "ThresholdCrossed") record(metrics.thresholds(event.kind), 1)
    return PubSub.publishAll(hub, events)
  }

  /** The snapshot to plan on: the cached one when allowed and present (`cachedAt` says when it was taken), else a load. */
  const read = (fromCache: boolean) =>
    Effect.gen(function* () {
      const cached = fromCache && cache !== null ? cache.get(key) : undefined
      let stored: StoredHolder | null
      if (cached !== undefined) stored = cached.stored
      else {
        // Stamped before the load: a snapshot is at least as old as the request that read it.
        const asked = performance.now()
        stored = Option.getOrNull(yield* storage.load(ref))
        if (cache !== null) {
          if (stored === null) cache.delete(key)
          else cache.set(key, stored, asked)
        }
      }
      const referenced =
        tx.reference === undefined || stored === null
          ? null
          : Option.getOrNull(yield* storage.findEntry(ref, { reference: tx.reference }))
      const proof =
        lost.length > 0 && tx.witness._tag === "Entry" && stored !== null
          ? Option.getOrNull(yield* storage.findEntry(ref, { id: tx.witness.id }))
          : null
      return { snapshot: { stored, referenced } satisfies Snapshot, proof, cachedAt: cached?.at ?? null }
    })

  const committed = (stored: StoredHolder, sent: number) => {
    if (cache !== null) cache.set(key, stored, sent)
  }
  /** After a conflict: this holder's snapshot was stale. */
  const forget = () => {
    if (cache !== null) cache.delete(key)
  }
  /**
   * After a storage failure: every snapshot. A failure is how a failover shows, and a store that
   * failed over may have lost acknowledged writes, so a cached revision may be written again with
   * another document: only a fresh load is sure to see the store as it is now.
   */
  const forgetAll = () => {
    if (cache !== null) cache.clear()
  }

  type Failure = E | StorageUnavailable | OutcomeUnknown

  const loop: Effect.Effect<A, Failure> = Effect.suspend(() =>
    Effect.gen(function* () {
      const settling = lost.length > 0
      const readResult = yield* Effect.either(read(!settling && !mustLoad))
      mustLoad = false
      if (Either.isLeft(readResult)) {
        forgetAll()
        if (!settling) return yield* readResult.left
        lastFailure = readResult.left
        return yield* pause
      }
      const { snapshot, proof, cachedAt } = readResult.right
      const now = yield* Clock.currentTimeMillis
      const { stored } = snapshot
      const current = revisionOf(stored)

      if (settling) {
        if (lastLost !== null && stored !== null && witnessed(tx.witness, stored, proof, now)) {
          // The entry was read after the document: a commit that landed in between is in the entry
          // but not in the document read. Read again, so the answer is built from the written state.
          if (proof !== null && stored.document.journalSeq < proof.seq) return yield* loop
          const landed = tx.landed({ stored, entry: proof, sent: lastLost, now })
          yield* publish(landed.events)
          return landed.result
        }
        const moved = lost.some((expected) => expected !== current)
        // A lock grant's (or extension's) witness is not durable: the lock may have landed and been
        // released (or have expired and been taken over) since. Once the revision moved, nothing
        // can tell.
        if (moved && (tx.witness._tag === "Lock" || tx.witness._tag === "Extended")) return yield* unknown()
        // A lost commit whose expected revision is no longer the stored one can never land.
        for (let i = lost.length - 1; i >= 0; i--) if (lost[i] !== current) lost.splice(i, 1)
        if (exhausted) {
          if (lost.length > 0) return yield* unknown()
          return yield* gaveUp()
        }
      }

      const decided = tx.plan(snapshot, now)
      if (Either.isLeft(decided) || decided.right.write === undefined) {
        // No compare-and-set checks an answer that writes nothing: one planned on the cache is
        // checked again on a fresh load, but for a CreditLocked refusal on a young enough entry.
        if (
          cachedAt !== null &&
          !(
            Either.isLeft(decided) &&
            (decided.left as { readonly _tag?: unknown })._tag === "CreditLocked" &&
            (cache as SnapshotCache).maxAgeMillis > performance.now() - cachedAt
          )
        ) {
          mustLoad = true
          return yield* loop
        }
        // A refusal or a write-free answer is only true once no lost commit can still land.
        if (lost.length > 0) {
          if (stored === null) return yield* pause
          const fenceSent = performance.now()
          const fence = yield* Effect.either(
            storage.commit({
              ref,
              expected: stored.revision,
              document: stored.document,
              entries: [],
              index: [],
              claims: [],
            }),
          )
          if (Either.isLeft(fence)) {
            forgetAll()
            lastFailure = fence.left
            return yield* pause
          }
          // Committed: the revision moved past every lost commit, so none can land. Conflict: the
          // revision moved — perhaps by a lost commit landing — so read its witness again at once.
          // A second Conflict at the same revision is the store refusing for a race of its own (a
          // serialization failure): read again after the settle back-off, within the settle
          // window, so that refusals that keep coming end the call.
          if (fence.right._tag !== "Committed") {
            forget()
            if (fenceRefusedAt === stored.revision) return yield* pause
            fenceRefusedAt = stored.revision
            return yield* loop
          }
          committed({ revision: fence.right.revision, document: stored.document }, fenceSent)
          lost.length = 0
        }
        if (Either.isLeft(decided)) return yield* Effect.fail(decided.left)
        yield* publish(decided.right.events)
        return decided.right.result
      }

      const plan = decided.right
      const write = decided.right.write
      const sent = performance.now()
      const commit = yield* Effect.either(storage.commit({ ref, expected: current, ...write }))
      if (Either.isLeft(commit)) {
        forgetAll()
        const failure = commit.left
        lastFailure = failure
        if (failure._tag === "OutcomeUnknown") {
          // One settle window per call, from its first lost reply: the call stays bounded.
          if (deadline === 0) deadline = (yield* liveNow) + settleMillis
          lost.push(current)
          lastLost = plan
          record(metrics.retries(operation, "unknown_outcome"), 1)
          return yield* pause
        }
        // Not applied. Without an earlier lost commit, that is the answer.
        if (lost.length === 0) return yield* failure
        return yield* pause
      }
      const outcome = commit.right
      switch (outcome._tag) {
        case "Committed":
          committed({ revision: outcome.revision, document: write.document }, sent)
          yield* publish(plan.events)
          return plan.result
        case "Claimed":
          // Every attempt of this call claimed the same aliases, so none of them can have landed.
          if (tx.claimed === undefined) {
            return yield* Effect.dieMessage(`the storage answered Claimed to a commit that claims nothing`)
          }
          return yield* Effect.fail(tx.claimed(outcome.alias))
        case "Conflict": {
          forget()
          record(metrics.conflicts(operation), 1)
          // A cached snapshot that was stale: plan again on a fresh load at once; not an attempt.
          if (cachedAt !== null) {
            record(metrics.retries(operation, "stale_snapshot"), 1)
            mustLoad = true
            return yield* loop
          }
          conflicts += 1
          if (conflicts >= maxAttempts) {
            if (lost.length === 0) return yield* gaveUp()
            exhausted = true
            return yield* loop
          }
          record(metrics.retries(operation, "conflict"), 1)
          yield* annotate("creditlock.conflicts", conflicts)
          yield* conflictBackoff(conflicts)
          return yield* loop
        }
      }
    }),
  )

  /** Waits before the next proof read, or gives up as unknown once the deadline has passed. */
  const pause: Effect.Effect<A, Failure> = Effect.suspend(() =>
    Effect.gen(function* () {
      if ((yield* liveNow) >= deadline) return yield* unknown()
      yield* settleBackoff(settleRound, deadline)
      settleRound += 1
      return yield* loop
    }),
  )

  return cache === null ? loop : cache.gated(key, loop)
}
