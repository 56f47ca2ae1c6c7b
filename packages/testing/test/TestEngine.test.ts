/**
 * The test engines: lock TTLs, withLock's wait and temporary limits follow the controlled clock,
 * with no real waiting, for Promise code and for Effect code.
 */
import { CreditEngine, CreditError, type HolderRef } from "@creditlock/core"
import { Storage } from "@creditlock/core/storage"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { ControlledClock, createTestCreditEngine, TestEngine } from "../src/index.js"

const holder: HolderRef = { customerId: "cus_1", holderType: "contracts", holderId: "sub_1" }
const gbp = (value: number) => [{ type: "monetary" as const, changeAmount: { currencyCode: "GBP", value } }]

const code = async (call: Promise<unknown>): Promise<string> => {
  try {
    await call
  } catch (error) {
    if (error instanceof CreditError) return error.code
    throw error
  }
  return "resolved"
}

describe("createTestCreditEngine", () => {
  it("starts at a fixed instant, and a lock expires exactly when the clock passes its TTL", async () => {
    await using credit = createTestCreditEngine({ lockTtl: "2 minutes" })
    expect(credit.now().toISOString()).toBe(ControlledClock.DEFAULT_START.toISOString())
    await credit.openHolder(holder)
    const { lock } = await credit.lock(holder)
    expect(lock.expiry.getTime()).toBe(credit.now().getTime() + 120_000)
    credit.advance("119999 millis")
    expect(await code(credit.lock(holder))).toBe("CREDIT_LOCKED")
    credit.advance(1)
    expect(await code(credit.modify(holder, lock.key, { reason: "late", modifications: gbp(1) }))).toBe("LOCK_EXPIRED")
    const again = await credit.lock(holder)
    expect(again.lock.token).toBe(2)
  })

  it("startAt and advance move only forward", async () => {
    await using credit = createTestCreditEngine({ startAt: new Date("2026-11-01T00:00:00Z") })
    credit.advance("1 day")
    expect(credit.now().toISOString()).toBe("2026-11-02T00:00:00.000Z")
    expect(() => credit.advance(-1)).toThrow(RangeError)
    expect(() => credit.clock.setTime(0)).toThrow(RangeError)
  })

  it("a contended withLock waits on the controlled clock: it gives up after its wait, without real waiting", async () => {
    await using credit = createTestCreditEngine()
    await credit.openHolder(holder)
    await credit.lock(holder)
    const before = credit.now().getTime()
    const started = Date.now()
    expect(await code(credit.withLock(holder, async () => "ran", { wait: "30 seconds" }))).toBe("CREDIT_LOCKED")
    expect(credit.now().getTime() - before).toBeGreaterThanOrEqual(30_000)
    // The lock (120 s) is still live: the clock moved by the wait, not past the TTL.
    expect(credit.now().getTime() - before).toBeLessThan(120_000)
    expect(Date.now() - started).toBeLessThan(20_000)
  })

  it("a withLock that outwaits the holder's expired lock takes it over", async () => {
    await using credit = createTestCreditEngine()
    await credit.openHolder(holder)
    const first = await credit.lock(holder)
    const ran = await credit.withLock(holder, async ({ lock }) => lock.token, { wait: "5 minutes" })
    expect(ran).toBe(2)
    expect(credit.now().getTime()).toBeGreaterThanOrEqual(first.lock.expiry.getTime())
  })

  it("concurrent withLock calls on one holder all run, in turn, each under a live lock", async () => {
    await using credit = createTestCreditEngine({ lockTtl: "10 seconds" })
    await credit.openHolder(holder)
    const ran: Array<number> = []
    const bill = (i: number) =>
      credit.withLock(holder, async ({ lock }) => {
        // Real asynchronous work: the others wait meanwhile, and their waits move the clock.
        await new Promise((resolve) => setTimeout(resolve, 0))
        await credit.modify(holder, lock.key, { reason: `top-up ${i}`, modifications: gbp(1) })
        ran.push(i)
      })
    await Promise.all([0, 1, 2, 3].map(bill))
    expect(ran).toEqual([0, 1, 2, 3])
    expect((await credit.getCredit(holder)).current.credit[0]?.amount.value).toBe(4)
  })

  it("temporary credit limits start and end with the clock", async () => {
    await using credit = createTestCreditEngine()
    await credit.openHolder(holder, { balanceGroupId: "0.0.0.1+-balance_group+1" })
    await credit.setCreditLimits("0.0.0.1+-balance_group+1", {
      resourceId: 826,
      limit: "0",
      tempCreditLimit: [{ limit: "50.00", validFromUnit: 3, validFromOffset: 1, validToUnit: 4, validToOffset: 1 }],
    })
    const debit = async () => {
      const { lock } = await credit.lock(holder)
      try {
        return await code(credit.modify(holder, lock.key, { reason: "bill", modifications: gbp(-1_000) }))
      } finally {
        await credit.unlock(holder, lock.key)
      }
    }
    expect(await debit()).toBe("CREDIT_LIMIT_EXCEEDED")
    credit.advance("1 hour")
    expect(await debit()).toBe("resolved")
    credit.advance("1 day")
    expect(await debit()).toBe("CREDIT_LIMIT_EXCEEDED")
    expect((await credit.checkInvariants([holder])).ok).toBe(true)
  })

  it("options outside their ranges throw at once, as createCreditEngine does", () => {
    expect(() => createTestCreditEngine({ lockTtl: 0 })).toThrow(CreditError)
  })
})

describe("TestEngine.layer", () => {
  it.effect("bundles the engine, the raw store and the controlled clock", () =>
    Effect.gen(function* () {
      const credit = yield* CreditEngine
      const clock = yield* ControlledClock.ControlledClockService
      const storage = yield* Storage
      yield* credit.openHolder(holder)
      const { lock } = yield* credit.lock(holder)
      expect(lock.expiry.getTime()).toBe(Date.parse("2026-01-01T00:00:30Z"))
      clock.advance("30 seconds")
      const next = yield* credit.lock(holder)
      expect(next.lock.token).toBe(2)
      const stored = yield* storage.load(holder)
      expect(Option.map(stored, (s) => s.document.lastLockToken)).toEqual(Option.some(2))
    }).pipe(Effect.provide(TestEngine.layer({ lockTtl: "30 seconds", startAt: new Date("2026-01-01T00:00:00Z") }))),
  )

  it.effect("Effect.sleep in the caller's code moves the same clock", () =>
    Effect.gen(function* () {
      const credit = yield* CreditEngine
      yield* credit.openHolder(holder)
      yield* credit.lock(holder)
      yield* Effect.sleep("2 minutes")
      const next = yield* credit.lock(holder)
      expect(next.lock.token).toBe(2)
    }).pipe(Effect.provide(TestEngine.layer())),
  )
})
