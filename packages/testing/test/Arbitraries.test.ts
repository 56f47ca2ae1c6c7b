/**
 * The arbitraries' two claims, proven against the engine's own validation: every accepted value
 * passes it (and is applied where nothing else stands in the way), every rejected value fails with
 * the error the arbitrary names — and changes nothing.
 */
import { CreditError, type HolderRef } from "@creditlock/core"
import fc from "fast-check"
import { afterEach, describe, expect, it } from "vitest"
import { Arbitraries, createTestCreditEngine, type TestCreditEngine } from "../src/index.js"

let engine: TestCreditEngine
afterEach(async () => {
  await engine.close()
})

let next = 0
/** A fresh, opened holder (with a balance group), locked; its key. */
const lockedHolder = async (balanceGroupId?: string) => {
  next += 1
  const ref: HolderRef = { customerId: `c${next}`, holderType: "contracts", holderId: `h${next}` }
  await engine.openHolder(ref, balanceGroupId === undefined ? {} : { balanceGroupId })
  const { lock } = await engine.lock(ref)
  return { ref, key: lock.key }
}

/** The CreditError a call rejected with; fails the test when it resolved. */
const rejection = async (call: Promise<unknown>): Promise<CreditError> => {
  try {
    await call
  } catch (error) {
    if (error instanceof CreditError) return error
    throw error
  }
  throw new Error("expected the engine to reject the call, but it resolved")
}

describe("accepted inputs pass the engine's validation", () => {
  it("holder refs (BRM-style ids included) open", async () => {
    engine = createTestCreditEngine()
    await fc.assert(
      fc.asyncProperty(Arbitraries.holderRef, async (ref) => {
        const opened = await engine.openHolder(ref)
        expect(opened.holder).toEqual(ref)
      }),
      { numRuns: 200 },
    )
  })

  it("BRM ids are accepted as holder ids and balance groups", async () => {
    engine = createTestCreditEngine()
    const claimed = new Set<string>()
    await fc.assert(
      fc.asyncProperty(Arbitraries.brmId, Arbitraries.brmId, async (holderId, balanceGroupId) => {
        // A balance group is claimed by one holder for good.
        fc.pre(!claimed.has(balanceGroupId))
        claimed.add(balanceGroupId)
        next += 1
        const ref: HolderRef = { customerId: `c${next}`, holderType: "customers", holderId }
        const opened = await engine.openHolder(ref, { balanceGroupId })
        expect(opened).toEqual({ holder: ref, balanceGroupId, created: true })
      }),
      { numRuns: 50 },
    )
  })

  it("credits in every active currency are applied", async () => {
    engine = createTestCreditEngine()
    const { ref, key } = await lockedHolder()
    await fc.assert(
      fc.asyncProperty(Arbitraries.currencyCode, fc.integer({ min: 1, max: 1_000 }), async (currencyCode, value) => {
        const result = await engine.modify(ref, key, {
          reason: "top-up",
          modifications: [{ type: "monetary", changeAmount: { currencyCode, value } }],
        })
        expect(result.current.credit.some((c) => c.amount.currencyCode === currencyCode)).toBe(true)
      }),
      { numRuns: 200 },
    )
  })

  it("modify requests are applied, or refused only for lack of credit", async () => {
    engine = createTestCreditEngine()
    await fc.assert(
      fc.asyncProperty(Arbitraries.modifyRequest(), async (request) => {
        const { ref, key } = await lockedHolder()
        try {
          const result = await engine.modify(ref, key, request)
          expect(result.replayed).toBe(false)
        } catch (error) {
          expect(error).toBeInstanceOf(CreditError)
          expect((error as CreditError).tag).toBe("InsufficientCredit")
          expect(request.modifications.some((m) => m.changeAmount.value < 0)).toBe(true)
        }
      }),
      { numRuns: 200 },
    )
  })

  it("credit-only modify requests are always applied", async () => {
    engine = createTestCreditEngine()
    await fc.assert(
      fc.asyncProperty(Arbitraries.modifyRequest({ creditsOnly: true, maxModifications: 5 }), async (request) => {
        const { ref, key } = await lockedHolder()
        const result = await engine.modify(ref, key, request)
        expect(result.current.credit).toHaveLength(request.modifications.length)
      }),
      { numRuns: 200 },
    )
  })

  it("BRM credit-limit requests with temporary limits are applied", async () => {
    engine = createTestCreditEngine()
    await fc.assert(
      fc.asyncProperty(Arbitraries.creditLimitRequest(), async (request) => {
        const { ref } = await lockedHolder(`bg-${next + 1}`)
        const view = await engine.setCreditLimits(`bg-${next}`, request)
        expect(view.holder).toEqual(ref)
        expect(view.limits.map((l) => l.resourceId)).toEqual([request.resourceId])
        expect(view.limits[0]?.temporary).toHaveLength(request.tempCreditLimit?.length ?? 0)
      }),
      { numRuns: 200 },
    )
  })
})

describe("rejected inputs fail the engine's validation with the error named, changing nothing", () => {
  it("holder refs → InvalidRequest (400)", async () => {
    engine = createTestCreditEngine()
    await fc.assert(
      fc.asyncProperty(Arbitraries.invalidHolderRef, async ({ value, expected }) => {
        const error = await rejection(engine.openHolder(value))
        expect(error.tag).toBe(expected)
        expect(error.status).toBe(400)
      }),
      { numRuns: 200 },
    )
  })

  it("currency codes → InvalidRequest (400)", async () => {
    engine = createTestCreditEngine()
    const { ref, key } = await lockedHolder()
    await fc.assert(
      fc.asyncProperty(Arbitraries.invalidCurrencyCode, async (currencyCode) => {
        const error = await rejection(
          engine.modify(ref, key, {
            reason: "r",
            modifications: [{ type: "monetary", changeAmount: { currencyCode, value: 1 } }],
          }),
        )
        expect(error.tag).toBe("InvalidRequest")
      }),
      { numRuns: 200 },
    )
    expect((await engine.journal(ref)).entries.map((e) => e.kind)).toEqual(["opened"])
  })

  it("modify requests → InvalidRequest (400) or DuplicateCreditType (422)", async () => {
    engine = createTestCreditEngine()
    const { ref, key } = await lockedHolder()
    const seen = new Set<string>()
    await fc.assert(
      fc.asyncProperty(Arbitraries.invalidModifyRequest, async ({ value, expected, why }) => {
        seen.add(why)
        const error = await rejection(engine.modify(ref, key, value))
        expect(error.tag, why).toBe(expected)
        expect(error.status).toBe(expected === "InvalidRequest" ? 400 : 422)
      }),
      { numRuns: 300 },
    )
    expect(seen.size).toBe(7)
    expect((await engine.journal(ref)).entries.map((e) => e.kind)).toEqual(["opened"])
    expect((await engine.getCredit(ref)).current.credit).toEqual([])
  })

  it("credit-limit requests → InvalidRequest (400) or UnsupportedResource (422)", async () => {
    engine = createTestCreditEngine()
    const { ref } = await lockedHolder("bg-limits")
    const seen = new Set<string>()
    await fc.assert(
      fc.asyncProperty(Arbitraries.invalidCreditLimitRequest, async ({ value, expected, why }) => {
        seen.add(why)
        const error = await rejection(engine.setCreditLimits("bg-limits", value))
        expect(error.tag, why).toBe(expected)
        expect(error.status).toBe(expected === "InvalidRequest" ? 400 : 422)
      }),
      { numRuns: 300 },
    )
    expect(seen.size).toBe(8)
    expect((await engine.journal(ref)).entries.map((e) => e.kind)).toEqual(["opened"])
    expect((await engine.getCreditLimits("bg-limits")).limits).toEqual([])
  })
})
