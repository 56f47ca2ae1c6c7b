/**
 * Conformance: races. Concurrent fibers contend for one holder through the adapter; fast-check's
 * scheduler reorders every storage call to search for interleavings that break the rules.
 *
 * @module
 */
import { CreditEngine, type HolderRef } from "@creditlock/core"
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Either, Layer, Schedule } from "effect"
import fc from "fast-check"
import { change, contract, overriding, type StorageLayer } from "./Harness.js"

export interface RaceOptions {
  /** Fibers in the lock → modify → unlock loop (default 8). */
  readonly workers?: number
  /** Cycles per fiber (default 25). */
  readonly cycles?: number
  /** Runs of the scheduler property (default 60). */
  readonly schedulerRuns?: number
}

/** Wraps a storage so that every call first waits for fast-check's scheduler to release it. */
const scheduledStorage = (scheduler: fc.Scheduler) =>
  overriding((inner) => {
    const gate = (label: string) => Effect.promise(() => scheduler.schedule(Promise.resolve(), label))
    return {
      load: (ref) => Effect.zipRight(gate("load"), inner.load(ref)),
      commit: (request) => Effect.zipRight(gate("commit"), inner.commit(request)),
      findEntry: (ref, selector) => Effect.zipRight(gate("findEntry"), inner.findEntry(ref, selector)),
    }
  })

/** Retries while the credit is locked by someone else. */
const whileLocked = Schedule.spaced(Duration.millis(1)).pipe(Schedule.intersect(Schedule.recurs(10_000)))

export const raceTests = (storage: StorageLayer, options: RaceOptions = {}) => {
  const engine = CreditEngine.layer().pipe(Layer.provideMerge(storage))

  describe("races", () => {
    it.live("50 fibers lock one holder at once: exactly one wins, the others see CreditLocked", () =>
      Effect.gen(function* () {
        const credit = yield* CreditEngine
        const ref = contract()
        yield* credit.openHolder(ref)
        const results = yield* Effect.all(
          Array.from({ length: 50 }, () => Effect.either(credit.lock(ref))),
          { concurrency: "unbounded" },
        )
        const winners = results.filter(Either.isRight).map((r) => r.right)
        expect(winners).toHaveLength(1)
        expect(results.filter(Either.isLeft).map((r) => r.left._tag)).toEqual(Array(49).fill("CreditLocked"))
        const [winner] = winners
        if (winner !== undefined) yield* credit.modify(ref, winner.lock.key, change("GBP", 1))
      }).pipe(Effect.provide(engine)),
    )

    it.live(
      "fibers looping lock → modify → unlock: the final value is the sum of acknowledged deltas",
      () =>
        Effect.gen(function* () {
          const credit = yield* CreditEngine
          // Half the workers on a second engine over the same storage, as in another process: within
          // one engine operations on a holder take turns, across engines they race on the revision.
          const other = Context.get(yield* Layer.build(CreditEngine.layer()), CreditEngine)
          const ref = contract()
          yield* credit.openHolder(ref)
          const workers = options.workers ?? 8
          const cycles = options.cycles ?? 25
          const worker = (w: number) =>
            Effect.gen(function* () {
              const mine = w % 2 === 0 ? credit : other
              let acknowledged = 0
              let count = 0
              for (let i = 0; i < cycles; i++) {
                const { lock } = yield* mine
                  .lock(ref)
                  .pipe(Effect.retry({ schedule: whileLocked, while: (e) => e._tag === "CreditLocked" }))
                // Mostly credits, some debits that may be refused for insufficient credit.
                const delta = (w * 31 + i * 17) % 5 === 0 ? -7 : 3 + ((w + i) % 4)
                const result = yield* Effect.either(mine.modify(ref, lock.key, change("GBP", delta, `w${w}`)))
                if (Either.isRight(result)) {
                  acknowledged += delta
                  count++
                } else {
                  expect(result.left._tag).toBe("InsufficientCredit")
                }
                yield* mine.unlock(ref, lock.key)
              }
              return { acknowledged, count }
            })
          const results = yield* Effect.all(
            Array.from({ length: workers }, (_, w) => worker(w)),
            { concurrency: "unbounded" },
          )
          const sum = results.reduce((s, r) => s + r.acknowledged, 0)
          const count = results.reduce((s, r) => s + r.count, 0)
          const view = yield* credit.getCredit(ref)
          expect(view.current.credit[0]?.amount.value ?? 0).toBe(sum)
          const journal = yield* credit.journal(ref, { limit: 1000 })
          expect(journal.entries.filter((e) => e.kind === "modification")).toHaveLength(count)
          expect((yield* credit.verify(ref)).ok).toBe(true)
        }).pipe(Effect.provide(engine), Effect.scoped),
      120_000,
    )

    it.live(
      "any interleaving of storage calls (fc.scheduler): one lock wins, a reference applies once, nothing is lost",
      () =>
        Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(fc.scheduler(), fc.integer({ min: 2, max: 5 }), async (scheduler, contenders) => {
              // Contenders alternate between two engines over the same storage (as two processes would),
              // so the revision check is raced as well as each engine's own turn-taking.
              const run = (engines: ReadonlyArray<CreditEngine["Type"]>) =>
                Effect.gen(function* () {
                  const on = (i: number) => engines[i % engines.length] as CreditEngine["Type"]
                  const credit = on(0)
                  const ref: HolderRef = contract()
                  const start = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(Effect.either(effect))

                  const settle = <A, E>(effects: ReadonlyArray<Effect.Effect<A, E>>) =>
                    Effect.promise(() => scheduler.waitFor(Promise.all(effects.map(start))))

                  // Phase 1: concurrent opens, then concurrent locks.
                  const opened = yield* settle(Array.from({ length: contenders }, (_, i) => on(i).openHolder(ref)))
                  expect(opened.filter((o) => Either.isRight(o) && o.right.created)).toHaveLength(1)
                  const locked = yield* settle(Array.from({ length: contenders }, (_, i) => on(i).lock(ref)))
                  const winners = locked.filter(Either.isRight).map((w) => w.right)
                  expect(winners).toHaveLength(1)
                  const key = (winners[0] as (typeof winners)[number]).lock.key

                  // Phase 2: the same reference sent concurrently, plus distinct modifications.
                  const done = yield* settle([
                    ...Array.from({ length: contenders }, (_, i) =>
                      on(i).modify(ref, key, change("GBP", 10, "r", "same")),
                    ),
                    ...Array.from({ length: contenders }, (_, i) => on(i + 1).modify(ref, key, change("EUR", i + 1))),
                  ])
                  expect(done.every(Either.isRight)).toBe(true)
                  const entryIds = new Set(done.slice(0, contenders).map((d) => Either.getOrThrow(d).entryId))
                  expect(entryIds.size).toBe(1)
                  const [view] = yield* settle([credit.getCredit(ref)])
                  const credits = Either.getOrThrow(view as NonNullable<typeof view>).current.credit
                  const value = (c: string) => credits.find((x) => x.amount.currencyCode === c)?.amount.value
                  expect(value("GBP")).toBe(10)
                  expect(value("EUR")).toBe((contenders * (contenders + 1)) / 2)
                  const [report] = yield* settle([credit.verify(ref)])
                  expect(Either.getOrThrow(report as NonNullable<typeof report>).ok).toBe(true)
                })
              const program = Effect.gen(function* () {
                const shared = yield* Layer.build(Layer.provide(scheduledStorage(scheduler), storage))
                const engines = yield* Effect.forEach([0, 1], () =>
                  Effect.map(Effect.provide(Layer.build(CreditEngine.layer()), shared), (c) =>
                    Context.get(c, CreditEngine),
                  ),
                )
                yield* run(engines)
              })
              await Effect.runPromise(Effect.scoped(program))
            }),
            { numRuns: options.schedulerRuns ?? 60 },
          ),
        ),
      120_000,
    )
  })
}
