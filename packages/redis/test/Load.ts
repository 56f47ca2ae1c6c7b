/**
 * Concurrent load for the Redis tests: workers, each with its own engine over its own storage
 * (so its own ioredis connection), looping lock → modify → unlock over shared holders, and a
 * record of what each operation was answered.
 *
 * @module
 */
import { CreditEngine } from "@creditlock/core"
import { type HolderRef, holderKey, type JournalEntry } from "@creditlock/core/storage"
import { change, contract, customerHolder, engineWith, freshCustomer, type StorageLayer } from "@creditlock/test-suite"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Schedule } from "effect"

/** Three holders: two of one customer, one of another. */
export const sharedHolders = (): ReadonlyArray<HolderRef> => {
  const a = freshCustomer()
  return [contract(a), customerHolder(a), contract(freshCustomer())]
}

/** One acknowledged modification. */
export interface Acknowledged {
  readonly holder: string
  readonly entryId: string
  readonly delta: number
}

/** One operation that failed with StorageUnavailable or OutcomeUnknown, and how long it took. */
export interface Unavailable {
  readonly operation: "lock" | "modify" | "unlock"
  readonly tag: "StorageUnavailable" | "OutcomeUnknown"
  readonly millis: number
}

/** What a worker saw. */
export interface WorkerLog {
  readonly acknowledged: Array<Acknowledged>
  readonly unavailable: Array<Unavailable>
  readonly refused: Array<string>
}

/** Options of {@link runWorker}. */
export interface WorkerOptions {
  readonly worker: number
  readonly holders: ReadonlyArray<HolderRef>
  readonly cycles: number
  /** Stop at the first StorageUnavailable or OutcomeUnknown (default: keep going). */
  readonly stopWhenUnavailable?: boolean
  /** Stop when this returns true (checked before each cycle). */
  readonly stop?: () => boolean
  /** Where to record answers, for a caller that watches progress (default: a new log). */
  readonly log?: WorkerLog
}

/** An empty log. */
export const emptyLog = (): WorkerLog => ({ acknowledged: [], unavailable: [], refused: [] })

const whileLocked = Schedule.spaced(Duration.millis(2)).pipe(Schedule.intersect(Schedule.recurs(5_000)))

/**
 * Loops lock → modify → unlock with the engine in context. Deltas are mostly credits; some debits
 * may be refused for insufficient credit. Every answer is recorded; an unexpected error fails.
 */
export const runWorker = (options: WorkerOptions) =>
  Effect.gen(function* () {
    const engine = yield* CreditEngine
    const log = options.log ?? emptyLog()
    const timed = <A, E extends { readonly _tag: string }>(
      operation: Unavailable["operation"],
      effect: Effect.Effect<A, E>,
    ): Effect.Effect<Either.Either<A, E>> =>
      Effect.gen(function* () {
        const started = Date.now()
        const result = yield* Effect.either(effect)
        if (
          Either.isLeft(result) &&
          (result.left._tag === "StorageUnavailable" || result.left._tag === "OutcomeUnknown")
        ) {
          log.unavailable.push({ operation, tag: result.left._tag, millis: Date.now() - started })
        }
        return result
      })
    for (let i = 0; i < options.cycles; i++) {
      if (options.stop?.() === true) break
      if (options.stopWhenUnavailable === true && log.unavailable.length > 0) break
      const ref = options.holders[(options.worker + i) % options.holders.length] as HolderRef
      const locked = yield* timed(
        "lock",
        engine.lock(ref).pipe(Effect.retry({ schedule: whileLocked, while: (e) => e._tag === "CreditLocked" })),
      )
      if (Either.isLeft(locked)) {
        expect(["StorageUnavailable", "OutcomeUnknown"]).toContain(locked.left._tag)
        continue
      }
      const key = locked.right.lock.key
      const delta = (options.worker * 31 + i * 17) % 6 === 0 ? -9 : 1 + ((options.worker + i) % 5)
      const modified = yield* timed("modify", engine.modify(ref, key, change("GBP", delta, `worker ${options.worker}`)))
      if (Either.isRight(modified)) {
        log.acknowledged.push({ holder: holderKey(ref), entryId: modified.right.entryId, delta })
      } else if (modified.left._tag === "StorageUnavailable" || modified.left._tag === "OutcomeUnknown") {
        continue
      } else {
        expect(modified.left._tag).toBe("InsufficientCredit")
        log.refused.push(modified.left._tag)
      }
      const unlocked = yield* timed("unlock", engine.unlock(ref, key))
      if (Either.isLeft(unlocked)) expect(["StorageUnavailable", "OutcomeUnknown"]).toContain(unlocked.left._tag)
    }
    return log
  })

/** Every journal entry of a holder, read through the engine. */
export const wholeJournal = (ref: HolderRef) =>
  Effect.gen(function* () {
    const engine = yield* CreditEngine
    const entries: Array<JournalEntry> = []
    let after = 0
    for (;;) {
      const page = yield* engine.journal(ref, { after, limit: 1000 })
      entries.push(...page.entries)
      if (page.next === null) return entries
      after = page.next
    }
  })

/**
 * Runs `clients` workers, each with its own engine over a storage built from `storage` (a new
 * connection each), over three shared holders, then checks through yet another connection that
 * each holder's value is the sum of its acknowledged deltas, that its journal holds exactly the
 * acknowledged modifications, and that `verify` passes.
 */
export const multiClientRun = (storage: StorageLayer, clients: number, cycles: number) =>
  Effect.gen(function* () {
    const holders = sharedHolders()
    yield* Effect.provide(
      Effect.forEach(holders, (ref) => Effect.flatMap(CreditEngine, (e) => e.openHolder(ref))),
      engineWith(storage),
    )
    const logs = yield* Effect.forEach(
      Array.from({ length: clients }, (_, worker) => worker),
      (worker) => Effect.provide(runWorker({ worker, holders, cycles }), engineWith(storage)),
      { concurrency: "unbounded" },
    )
    const acknowledged = logs.flatMap((l) => l.acknowledged)
    expect(logs.flatMap((l) => l.unavailable)).toEqual([])
    expect(acknowledged.length).toBeGreaterThan(clients * cycles * 0.5)
    yield* Effect.provide(
      Effect.forEach(holders, (ref) =>
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const mine = acknowledged.filter((a) => a.holder === holderKey(ref))
          const view = yield* engine.getCredit(ref)
          expect(view.current.credit[0]?.amount.value ?? 0).toBe(mine.reduce((sum, a) => sum + a.delta, 0))
          const modifications = (yield* wholeJournal(ref)).filter((e) => e.kind === "modification")
          expect(modifications.map((e) => e.id).sort()).toEqual(mine.map((a) => a.entryId).sort())
          expect((yield* engine.verify(ref)).ok).toBe(true)
        }),
      ),
      engineWith(storage),
    )
    return { acknowledged: acknowledged.length, refused: logs.flatMap((l) => l.refused).length }
  })

/** Registers the multi-client test: 6 independent clients × 40 cycles on shared holders. */
export const multiClientTests = (name: string, storage: StorageLayer): void => {
  describe(`${name}: several clients`, () => {
    it.live(
      "independent clients looping lock → modify → unlock on shared holders lose nothing",
      () =>
        Effect.gen(function* () {
          const result = yield* multiClientRun(storage, 6, 40)
          expect(result.refused).toBeGreaterThan(0)
        }),
      60_000,
    )
  })
}
