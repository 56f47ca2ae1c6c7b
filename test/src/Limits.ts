/**
 * Conformance: credit limits with Oracle BRM's balance-group semantics — regular, temporary,
 * unlimited and overridden limits, thresholds, request validation — and a property checking the
 * engine against an independent computation of the minimum in force and the thresholds crossed.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { CreditEngine, type CreditLimitRequestInput, type HolderRef, type Storage } from "@creditlock/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Runtime, type Scope, TestClock, TestContext } from "effect"
import fc from "fast-check"
import {
  change,
  contract,
  creditValue,
  engineWith,
  expectRejected,
  freshCustomer,
  type StorageLayer,
} from "./Harness.js"

/** Oracle's documented example body, verbatim. */
export const BRM_EXAMPLE: CreditLimitRequestInput = JSON.parse(
  '{"limit":"12.00","thresholds":null,"floor":"1.00","fixedThresholds":"1.00","resourceId":840,"tempCreditLimit":[{"limit":100,"resourceId":840,"validToUnit":4,"validToOffset":10,"validFromUnit":4,"validFromOffset":30}]}',
)

const DAY = 86_400_000
const T0 = Date.UTC(2026, 0, 1)

/** Opens a holder with a fresh balance group and returns both. */
const openWithGroup = Effect.gen(function* () {
  const engine = yield* CreditEngine
  const ref = contract()
  const balanceGroupId = `0.0.0.1+-balance_group+${randomUUID()}`
  yield* engine.openHolder(ref, { balanceGroupId })
  return { ref, balanceGroupId }
})

/** Locks, expects one change to be refused with `tag` and to change nothing, unlocks. */
const refused = (
  ref: HolderRef,
  currencyCode: string,
  value: number,
  tag: "CreditLimitExceeded" | "InsufficientCredit" | "AmountOutOfRange",
) =>
  Effect.gen(function* () {
    const engine = yield* CreditEngine
    const { lock } = yield* engine.lock(ref)
    const error = yield* expectRejected(ref, tag, engine.modify(ref, lock.key, change(currencyCode, value)))
    yield* engine.unlock(ref, lock.key)
    return error
  })

/** Locks, applies one change, unlocks (also when the change is refused). */
const apply = (ref: HolderRef, currencyCode: string, value: number) =>
  Effect.gen(function* () {
    const engine = yield* CreditEngine
    const { lock } = yield* engine.lock(ref)
    return yield* engine
      .modify(ref, lock.key, change(currencyCode, value))
      .pipe(Effect.ensuring(Effect.ignore(engine.unlock(ref, lock.key))))
  })

export const limitsTests = (storage: StorageLayer) => {
  const provide = <A, E, R extends CreditEngine | Storage | Scope.Scope>(effect: Effect.Effect<A, E, R>) =>
    Effect.provide(effect, engineWith(storage))

  describe("credit limits", () => {
    it.effect("BRM's example body: 12.00 enforced on day 0, 100 allowed from day 30, back to 12.00 on day 40", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          yield* TestClock.setTime(T0)
          const { ref, balanceGroupId } = yield* openWithGroup
          const set = yield* engine.setCreditLimits(balanceGroupId, BRM_EXAMPLE)
          expect(set.limits).toEqual([
            expect.objectContaining({
              resourceId: 840,
              currencyCode: "USD",
              limit: 1200,
              floor: 100,
              thresholds: [],
              fixedThresholds: [100],
              overrideCreditLimit: false,
              temporary: [{ limit: 10_000, validFrom: T0 + 30 * DAY, validTo: T0 + 40 * DAY }],
              effectiveLimit: 1200,
              minimumCredit: -1200,
            }),
          ])
          // Day 0: the regular limit.
          yield* apply(ref, "USD", -1200)
          yield* refused(ref, "USD", -1, "CreditLimitExceeded")
          // One millisecond before the temporary limit starts: still 12.00.
          yield* TestClock.setTime(T0 + 30 * DAY - 1)
          yield* refused(ref, "USD", -1, "CreditLimitExceeded")
          // Day 30, at the exact start: 100.00.
          yield* TestClock.setTime(T0 + 30 * DAY)
          expect((yield* engine.getCreditLimits(balanceGroupId)).limits[0]?.effectiveLimit).toBe(10_000)
          yield* apply(ref, "USD", -8_800)
          yield* refused(ref, "USD", -1, "CreditLimitExceeded")
          // The last millisecond of the temporary limit.
          yield* TestClock.setTime(T0 + 40 * DAY - 1)
          yield* apply(ref, "USD", 1)
          yield* apply(ref, "USD", -1)
          // Day 40, the exact end: back to 12.00; below it, top-ups pass, debits do not.
          yield* TestClock.setTime(T0 + 40 * DAY)
          expect((yield* engine.getCreditLimits(balanceGroupId)).limits[0]?.effectiveLimit).toBe(1200)
          const error = yield* refused(ref, "USD", -1, "CreditLimitExceeded")
          expect(error.status).toBe(422)
          expect(error.detail).toContain("12.00 USD")
          yield* apply(ref, "USD", 500)
          expect(yield* creditValue(ref, "USD")).toBe(-9_500)
          yield* refused(ref, "USD", -1, "CreditLimitExceeded")
          expect((yield* engine.verify(ref)).ok).toBe(true)
        }),
      ),
    )

    it.effect("without a limit record the minimum is 0 (InsufficientCredit); with one, CreditLimitExceeded", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, balanceGroupId } = yield* openWithGroup
          yield* refused(ref, "GBP", -1, "InsufficientCredit")
          yield* engine.setCreditLimits(balanceGroupId, { resourceId: 826, limit: "0" })
          yield* refused(ref, "GBP", -1, "CreditLimitExceeded")
          yield* refused(ref, "EUR", -1, "InsufficientCredit")
          yield* engine.setCreditLimits(balanceGroupId, { resourceId: 826, limit: 0.5 })
          yield* apply(ref, "GBP", -50)
          yield* refused(ref, "GBP", -1, "CreditLimitExceeded")
        }),
      ),
    )

    it.effect("unlimited (-1) lets credit go down without bound and dominates temporary limits", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, balanceGroupId } = yield* openWithGroup
          const set = yield* engine.setCreditLimits(balanceGroupId, {
            resourceId: 826,
            limit: -1,
            tempCreditLimit: [{ limit: 5, validFromUnit: 1, validFromOffset: 0, validToUnit: 4, validToOffset: 1 }],
          })
          expect(set.limits[0]).toMatchObject({ limit: "unlimited", effectiveLimit: "unlimited", minimumCredit: null })
          yield* apply(ref, "GBP", -1_000_000_000_000)
          yield* engine.setCreditLimits(balanceGroupId, { resourceId: 826, limit: "10.00", tempCreditLimit: [] })
          yield* refused(ref, "GBP", -1, "CreditLimitExceeded")
          yield* engine.setCreditLimits(balanceGroupId, {
            resourceId: 826,
            tempCreditLimit: [{ limit: "-1", validFromUnit: 2, validFromOffset: 0, validToUnit: 2, validToOffset: 5 }],
          })
          yield* apply(ref, "GBP", -1)
          yield* TestClock.adjust("5 minutes")
          yield* refused(ref, "GBP", -1, "CreditLimitExceeded")
        }),
      ),
    )

    it.effect("a record with thresholds only (no limit set, no temporary limit in force) leaves the minimum at 0", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, balanceGroupId } = yield* openWithGroup
          yield* engine.setCreditLimits(balanceGroupId, { resourceId: 826, thresholds: "50" })
          yield* refused(ref, "GBP", -1, "InsufficientCredit")
          yield* engine.setCreditLimits(balanceGroupId, {
            resourceId: 826,
            tempCreditLimit: [
              { limit: "1.00", validFromUnit: 1, validFromOffset: 0, validToUnit: 1, validToOffset: 60 },
            ],
          })
          yield* apply(ref, "GBP", -100)
          yield* refused(ref, "GBP", -1, "CreditLimitExceeded")
        }),
      ),
    )

    it.effect("overrideCreditLimit 1 stops enforcement; 0 restores it", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, balanceGroupId } = yield* openWithGroup
          yield* engine.setCreditLimits(balanceGroupId, { resourceId: 840, limit: "1.00", overrideCreditLimit: 1 })
          yield* apply(ref, "USD", -100_000)
          yield* engine.setCreditLimits(balanceGroupId, { resourceId: 840, overrideCreditLimit: 0 })
          yield* refused(ref, "USD", -1, "CreditLimitExceeded")
          yield* apply(ref, "USD", 1)
        }),
      ),
    )

    it.effect(
      "null or absent fields leave settings unchanged; a tempCreditLimit array replaces the temporary limits",
      () =>
        provide(
          Effect.gen(function* () {
            const engine = yield* CreditEngine
            const { balanceGroupId } = yield* openWithGroup
            yield* engine.setCreditLimits(balanceGroupId, BRM_EXAMPLE)
            const after = yield* engine.setCreditLimits(balanceGroupId, {
              resourceId: 840,
              limit: null,
              thresholds: "50|80|100",
              dynamicFloor: true,
              rollUp: false,
              extension: { note: "kept as given" },
            })
            expect(after.limits[0]).toMatchObject({
              limit: 1200,
              floor: 100,
              fixedThresholds: [100],
              thresholds: [50, 80, 100],
              dynamicFloor: true,
              rollUp: false,
              extension: { note: "kept as given" },
            })
            expect(after.limits[0]?.temporary).toHaveLength(1)
            const cleared = yield* engine.setCreditLimits(balanceGroupId, {
              resourceId: 840,
              tempCreditLimit: [],
              thresholds: "",
            })
            expect(cleared.limits[0]).toMatchObject({ temporary: [], thresholds: [], limit: 1200 })
            const read = yield* engine.getCreditLimits(balanceGroupId)
            expect(read.limits).toEqual(cleared.limits)
          }),
        ),
    )

    it.effect("amounts convert with the currency's digits (JPY 0, USD 2, KWD 3); absolute validity; months", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          yield* TestClock.setTime(Date.UTC(2026, 0, 31, 12))
          const { balanceGroupId } = yield* openWithGroup
          const jpy = yield* engine.setCreditLimits(balanceGroupId, { resourceId: 392, limit: "1200", floor: 0 })
          expect(jpy.limits.find((l) => l.currencyCode === "JPY")?.limit).toBe(1200)
          const kwd = yield* engine.setCreditLimits(balanceGroupId, {
            resourceId: 414,
            limit: "1.234",
            fixedThresholds: "0.5|1",
          })
          expect(kwd.limits.find((l) => l.currencyCode === "KWD")).toMatchObject({
            limit: 1234,
            fixedThresholds: [500, 1000],
          })
          const usd = yield* engine.setCreditLimits(balanceGroupId, {
            resourceId: 840,
            limit: 12,
            tempCreditLimit: [
              { limit: "50.5", validFrom: "2026-02-01T00:00:00Z", validTo: "2026-02-02T00:00:00+01:00" },
              { limit: 1, validFromUnit: 5, validFromOffset: 1, validToUnit: 5, validToOffset: 1 },
            ],
          })
          expect(usd.limits.find((l) => l.currencyCode === "USD")).toMatchObject({
            limit: 1200,
            temporary: [
              { limit: 5050, validFrom: Date.UTC(2026, 1, 1), validTo: Date.UTC(2026, 1, 1, 23) },
              // Jan 31 + 1 month is clamped to Feb 28; + 1 more month is Mar 28.
              { limit: 100, validFrom: Date.UTC(2026, 1, 28, 12), validTo: Date.UTC(2026, 2, 28, 12) },
            ],
          })
        }),
      ),
    )

    it.effect(
      "malformed requests → InvalidRequest (400); non-currency resources → UnsupportedResource (422); nothing changed",
      () =>
        provide(
          Effect.gen(function* () {
            const engine = yield* CreditEngine
            const { ref, balanceGroupId } = yield* openWithGroup
            yield* engine.setCreditLimits(balanceGroupId, { resourceId: 840, limit: "5.00" })
            const t = (extra: object) => ({
              limit: 1,
              validFromUnit: 1,
              validFromOffset: 0,
              validToUnit: 1,
              validToOffset: 60,
              ...extra,
            })
            const bad: ReadonlyArray<unknown> = [
              { resourceId: 840, limit: "12.345" },
              { resourceId: 392, limit: "12.5" },
              { resourceId: 840, limit: "12,00" },
              { resourceId: 840, limit: "abc" },
              { resourceId: 840, limit: -2 },
              { resourceId: 840, limit: true },
              { resourceId: "840", limit: 1 },
              { limit: 1 },
              { resourceId: 840, floor: "1.001" },
              { resourceId: 840, thresholds: "50|x" },
              { resourceId: 840, thresholds: "0" },
              { resourceId: 840, fixedThresholds: "1.005" },
              { resourceId: 840, overrideCreditLimit: 2 },
              { resourceId: 840, tempCreditLimit: [t({ validFromUnit: 6 })] },
              { resourceId: 840, tempCreditLimit: [t({ validToUnit: 0 })] },
              { resourceId: 840, tempCreditLimit: [t({ validToOffset: 0 })] },
              { resourceId: 840, tempCreditLimit: [t({ validToOffset: -1 })] },
              { resourceId: 840, tempCreditLimit: [t({ validFromOffset: 1.5 })] },
              { resourceId: 840, tempCreditLimit: [t({ resourceId: 826 })] },
              {
                resourceId: 840,
                tempCreditLimit: [{ limit: 1, validFrom: "2026-01-02T00:00:00Z", validTo: "2026-01-01T00:00:00Z" }],
              },
              {
                resourceId: 840,
                tempCreditLimit: [{ limit: 1, validFrom: "2026-01-01", validTo: "2026-01-02T00:00:00Z" }],
              },
              { resourceId: 840, tempCreditLimit: [{ limit: 1, validFrom: "2026-01-01T00:00:00Z" }] },
              { resourceId: 840, tempCreditLimit: [t({ validFrom: "2026-01-01T00:00:00Z" })] },
              { resourceId: 840, tempCreditLimit: [t({ limit: "1.001" })] },
              { resourceId: 840, tempCreditLimit: "soon" },
              null,
            ]
            for (const request of bad) {
              const error = yield* expectRejected(
                ref,
                "InvalidRequest",
                engine.setCreditLimits(balanceGroupId, request as never),
              )
              expect(error.status).toBe(400)
            }
            for (const resourceId of [959, 999, 1000001, 1]) {
              const error = yield* expectRejected(
                ref,
                "UnsupportedResource",
                engine.setCreditLimits(balanceGroupId, { resourceId, limit: 1 }),
              )
              expect(error.status).toBe(422)
              expect(error.detail).toContain(String(resourceId))
            }
            yield* expectRejected(
              ref,
              "AmountOutOfRange",
              engine.setCreditLimits(balanceGroupId, { resourceId: 840, limit: "99999999999999999" }),
            )
            yield* expectRejected(
              ref,
              "InvalidRequest",
              engine.setCreditLimits("has space", { resourceId: 840, limit: 1 }),
            )
          }),
        ),
    )

    it.effect(
      "balance groups resolve through the claimed alias: unknown → 404, no implicit alias; changes are journaled",
      () =>
        provide(
          Effect.gen(function* () {
            const engine = yield* CreditEngine
            const plain = contract()
            yield* engine.openHolder(plain, { balanceGroupId: `bg-${plain.holderId}` })
            const set = yield* engine.setCreditLimits(`bg-${plain.holderId}`, { resourceId: 826, limit: "3.00" })
            expect(set.holder).toEqual(plain)
            const entries = (yield* engine.journal(plain)).entries
            expect(entries.at(-1)).toMatchObject({ kind: "limits", limits: { before: null, after: { limit: 300 } } })
            expect((yield* engine.verify(plain)).ok).toBe(true)

            yield* expectRejected([], "HolderNotFound", engine.getCreditLimits(`nobody-${randomUUID()}`))
            // Two customers' contracts with the same id: neither answers to the holder id.
            const shared = `bg-${randomUUID()}`
            const one = contract(freshCustomer(), shared)
            const two = contract(freshCustomer(), shared)
            yield* engine.openHolder(one)
            yield* engine.openHolder(two)
            const error = yield* expectRejected(
              [one, two],
              "HolderNotFound",
              engine.setCreditLimits(shared, { resourceId: 826, limit: 1 }),
            )
            expect(error.status).toBe(404)
          }),
        ),
    )
  })

  describe("thresholds", () => {
    it.effect("a threshold reached because a temporary limit ended fires at the next change, once", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, balanceGroupId } = yield* openWithGroup
          yield* engine.setCreditLimits(balanceGroupId, {
            resourceId: 826,
            limit: "100.00",
            thresholds: "80|100",
            tempCreditLimit: [
              { limit: "200.00", validFromUnit: 3, validFromOffset: 0, validToUnit: 3, validToOffset: 1 },
            ],
          })
          // 150 of 200 used: 75 %, nothing reached.
          expect((yield* apply(ref, "GBP", -15_000)).events).toEqual([])
          // The temporary limit ends: 150 of 100 is 150 % — reached by time alone, no change yet.
          yield* TestClock.adjust("2 hours")
          // The next change of the currency finds both thresholds reached and fires each once …
          const topUp = yield* apply(ref, "GBP", 100)
          expect(topUp.events.map((e) => `${e.threshold}@${e.consumption}`)).toEqual(["80@14900", "100@14900"])
          const journaled = (yield* engine.journal(ref)).entries.at(-1)
          expect(journaled?.thresholds?.map((t) => t.threshold)).toEqual([80, 100])
          // … and not again while consumption stays above them.
          expect((yield* apply(ref, "GBP", 100)).events).toEqual([])
          // A limit change finds them still reached: nothing.
          const unchanged = yield* engine.setCreditLimits(balanceGroupId, { resourceId: 826, floor: 0 })
          expect(unchanged.events).toEqual([])
          // Below 80 % again re-arms 80; going back up fires it once more.
          expect((yield* apply(ref, "GBP", 10_000)).events).toEqual([])
          expect((yield* apply(ref, "GBP", -3_600)).events.map((e) => e.threshold)).toEqual([80])
        }),
      ),
    )

    it.scoped("percentage thresholds fire once per upward crossing, are journaled and published", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const events = yield* engine.subscribe
          const { ref, balanceGroupId } = yield* openWithGroup
          yield* engine.setCreditLimits(balanceGroupId, { resourceId: 840, limit: "100.00", thresholds: "50|80|100" })
          const crossed = (value: number) =>
            Effect.map(apply(ref, "USD", value), (r) => r.events.map((e) => `${e.kind}:${e.threshold}`))
          expect(yield* crossed(-4_999)).toEqual([])
          expect(yield* crossed(-1)).toEqual(["percentage:50"])
          expect(yield* crossed(-100)).toEqual([])
          expect(yield* crossed(-4_900)).toEqual(["percentage:80", "percentage:100"])
          expect(yield* crossed(2_001)).toEqual([])
          expect(yield* crossed(-1)).toEqual(["percentage:80"])
          expect(yield* crossed(-1)).toEqual([])
          const published = [...(yield* events.takeAll)].filter((e) => e._tag === "ThresholdCrossed")
          expect(published.map((e) => (e._tag === "ThresholdCrossed" ? e.threshold : 0))).toEqual([50, 80, 100, 80])
          expect(published[0]).toMatchObject({
            currencyCode: "USD",
            kind: "percentage",
            consumption: 5_000,
            effectiveLimit: 10_000,
          })
          const journaled = (yield* engine.journal(ref, { limit: 1000 })).entries.flatMap((e) => e.thresholds ?? [])
          expect(journaled.map((t) => t.threshold)).toEqual([50, 80, 100, 80])
        }),
      ),
    )

    it.effect("fixed thresholds are amounts of consumption; several may fire at once; credits never fire", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, balanceGroupId } = yield* openWithGroup
          yield* engine.setCreditLimits(balanceGroupId, {
            resourceId: 826,
            limit: -1,
            fixedThresholds: "10.00|20.00|30.00",
          })
          yield* apply(ref, "GBP", 5_000)
          expect((yield* apply(ref, "GBP", -7_500)).events.map((e) => e.threshold)).toEqual([1_000, 2_000])
          expect((yield* apply(ref, "GBP", 10_000)).events).toEqual([])
          expect((yield* apply(ref, "GBP", -7_499)).events).toEqual([])
          expect((yield* apply(ref, "GBP", -1)).events.map((e) => e.threshold)).toEqual([])
          expect((yield* apply(ref, "GBP", -3_000)).events.map((e) => e.threshold)).toEqual([1_000, 2_000, 3_000])
        }),
      ),
    )

    it.effect("thresholds fire with the limit overridden, and against the effective (temporary) limit", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, balanceGroupId } = yield* openWithGroup
          yield* engine.setCreditLimits(balanceGroupId, {
            resourceId: 840,
            limit: "10.00",
            thresholds: "50",
            overrideCreditLimit: 1,
            tempCreditLimit: [
              { limit: "100.00", validFromUnit: 3, validFromOffset: 0, validToUnit: 3, validToOffset: 1 },
            ],
          })
          expect((yield* apply(ref, "USD", -4_000)).events).toEqual([])
          expect((yield* apply(ref, "USD", -1_000)).events.map((e) => e.effectiveLimit)).toEqual([10_000])
        }),
      ),
    )

    it.effect("a limit change that puts consumption past a percentage threshold fires it", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const { ref, balanceGroupId } = yield* openWithGroup
          yield* engine.setCreditLimits(balanceGroupId, { resourceId: 840, limit: "100.00", thresholds: "50" })
          yield* apply(ref, "USD", -4_000)
          const lowered = yield* engine.setCreditLimits(balanceGroupId, { resourceId: 840, limit: "60.00" })
          expect(lowered.events.map((e) => e.threshold)).toEqual([50])
          expect((yield* engine.journal(ref, { limit: 1000 })).entries.at(-1)?.thresholds?.length).toBe(1)
          expect((yield* engine.setCreditLimits(balanceGroupId, { resourceId: 840, limit: "50.00" })).events).toEqual(
            [],
          )
        }),
      ),
    )
  })

  describe("limits property", () => {
    it.live(
      "over random limit changes, clock moves and modifications: no debit commits below the minimum in force, and thresholds fire exactly when armed and found reached",
      () =>
        Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(fc.array(operation, { minLength: 1, maxLength: 25 }), async (ops) => {
              const program = Effect.gen(function* () {
                const runtime = yield* Effect.runtime<CreditEngine | Storage>()
                const run = <A, E>(e: Effect.Effect<A, E, CreditEngine | Storage>) =>
                  Runtime.runPromise(runtime)(Effect.either(e))
                const { ref, balanceGroupId } = yield* openWithGroup
                yield* Effect.promise(() => checkAgainstModel(ops, ref, balanceGroupId, run))
              })
              await Effect.runPromise(
                program.pipe(Effect.provide(engineWith(storage)), Effect.provide(TestContext.TestContext)),
              )
            }),
            { numRuns: 100 },
          ),
        ),
      120_000,
    )
  })
}

/** Operations of the property: minutes-scale clock moves so temporary limits start and end. */
type Operation =
  | {
      readonly _tag: "limit"
      readonly limit: number | null
      readonly override: boolean | null
      readonly temp: { limit: number; from: number; length: number } | null
      readonly thresholds: ReadonlyArray<number> | null
    }
  | { readonly _tag: "advance"; readonly minutes: number }
  | { readonly _tag: "modify"; readonly value: number }

const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({
    _tag: fc.constant("limit" as const),
    limit: fc.option(fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 50 })), { nil: null }),
    override: fc.option(fc.boolean(), { nil: null }),
    temp: fc.option(
      fc.record({
        limit: fc.integer({ min: 0, max: 100 }),
        from: fc.integer({ min: 0, max: 30 }),
        length: fc.integer({ min: 1, max: 30 }),
      }),
      { nil: null },
    ),
    thresholds: fc.option(fc.uniqueArray(fc.integer({ min: 1, max: 120 }), { maxLength: 3 }), { nil: null }),
  }),
  fc.record({ _tag: fc.constant("advance" as const), minutes: fc.integer({ min: 1, max: 20 }) }),
  fc.record({
    _tag: fc.constant("modify" as const),
    value: fc.integer({ min: -3_000, max: 1_500 }).filter((v) => v !== 0),
  }),
  fc.record({ _tag: fc.constant("modify" as const), value: fc.integer({ min: -3_000, max: -1 }) }),
)

interface ModelLimits {
  limit: number | "unlimited" | null
  override: boolean
  temps: Array<{ limit: number; from: number; to: number }>
  thresholds: ReadonlyArray<number>
  /** Thresholds found reached at the last change (disarmed). */
  reached: ReadonlyArray<number>
}

/** The percentage thresholds consumption reaches at `now` (floor 0), computed independently. */
const modelReached = (m: ModelLimits, now: number, credit: number): ReadonlyArray<number> => {
  const effective = modelEffective(m, now)
  if (effective === "unlimited" || effective <= 0) return []
  return m.thresholds.filter((p) => -credit >= (p * effective) / 100)
}

/** The effective limit in minor units of GBP, computed independently of the engine. */
const modelEffective = (m: ModelLimits, now: number): number | "unlimited" => {
  if (m.limit === "unlimited") return "unlimited"
  let best = m.limit ?? 0
  for (const t of m.temps) if (t.from <= now && now < t.to) best = Math.max(best, t.limit)
  return best
}

const checkAgainstModel = async (
  ops: ReadonlyArray<Operation>,
  ref: HolderRef,
  balanceGroupId: string,
  run: <A, E>(e: Effect.Effect<A, E, CreditEngine | Storage>) => Promise<Either.Either<A, E>>,
) => {
  let now = 0
  let credit = 0
  let model: ModelLimits | null = null
  for (const op of ops) {
    if (op._tag === "advance") {
      await run(TestClock.adjust(op.minutes * 60_000))
      now += op.minutes * 60_000
    } else if (op._tag === "limit") {
      const request: CreditLimitRequestInput = {
        resourceId: 826,
        limit: op.limit,
        overrideCreditLimit: op.override === null ? null : op.override ? 1 : 0,
        thresholds: op.thresholds === null ? null : op.thresholds.join("|"),
        tempCreditLimit:
          op.temp === null
            ? null
            : [
                {
                  limit: op.temp.limit,
                  validFromUnit: 2,
                  validFromOffset: op.temp.from,
                  validToUnit: 2,
                  validToOffset: op.temp.length,
                },
              ],
      }
      const result = await run(Effect.flatMap(CreditEngine, (e) => e.setCreditLimits(balanceGroupId, request)))
      expect(Either.isRight(result)).toBe(true)
      const base: ModelLimits = model ?? { limit: null, override: false, temps: [], thresholds: [], reached: [] }
      const next: ModelLimits = {
        limit: op.limit === null ? base.limit : op.limit === -1 ? "unlimited" : op.limit * 100,
        override: op.override ?? base.override,
        thresholds: op.thresholds === null ? base.thresholds : [...op.thresholds].sort((a, b) => a - b),
        temps:
          op.temp === null
            ? base.temps
            : [
                {
                  limit: op.temp.limit * 100,
                  from: now + op.temp.from * 60_000,
                  to: now + (op.temp.from + op.temp.length) * 60_000,
                },
              ],
        reached: [],
      }
      // Thresholds new to the record start as found; the others fire when armed and reached.
      const reachedNow = modelReached(next, now, credit)
      const previous = [
        ...(model === null ? [] : base.reached),
        ...reachedNow.filter((p) => model === null || !base.thresholds.includes(p)),
      ]
      const fired = reachedNow.filter((p) => !previous.includes(p))
      expect(Either.getOrThrow(result).events.map((e) => e.threshold)).toEqual(fired)
      model = { ...next, reached: reachedNow }
    } else {
      const result = await run(apply(ref, "GBP", op.value))
      const after = credit + op.value
      const effective = model === null ? 0 : modelEffective(model, now)
      const enforced = model === null || (!model.override && effective !== "unlimited")
      const minimum = effective === "unlimited" ? Number.NEGATIVE_INFINITY : -effective
      const refused = op.value < 0 && enforced && after < minimum
      if (refused) {
        // Without a regular limit or a temporary one in force, a record (thresholds only) is no limit.
        const limited = model !== null && (model.limit !== null || model.temps.some((t) => t.from <= now && now < t.to))
        expect(Either.isLeft(result) && result.left._tag).toBe(limited ? "CreditLimitExceeded" : "InsufficientCredit")
      } else {
        const ok = Either.getOrThrow(result)
        // Each armed threshold found reached fires once, whatever moved consumption there.
        const current = model as ModelLimits | null
        const reachedNow: ReadonlyArray<number> = current === null ? [] : modelReached(current, now, after)
        const expected = current === null ? [] : reachedNow.filter((p) => !current.reached.includes(p))
        expect(ok.events.map((e) => e.threshold)).toEqual(expected)
        if (current !== null) model = { ...current, reached: reachedNow }
        credit = after
      }
    }
  }
  const final = await run(Effect.flatMap(CreditEngine, (e) => Effect.zip(e.getCredit(ref), e.verify(ref))))
  const [view, report] = Either.getOrThrow(final)
  expect(view.current.credit.find((c) => c.amount.currencyCode === "GBP")?.amount.value ?? 0).toBe(credit)
  expect(report.ok).toBe(true)
}
