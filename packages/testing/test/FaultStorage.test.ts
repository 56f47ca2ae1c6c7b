/**
 * The fault-injecting storage: each fault does what it says to the store (applied or not), the
 * same seed injects the same faults, and whatever plan fast-check draws, the engine answers every
 * write as applied, not applied or unknown — never as the wrong one.
 */
import { CreditError, type HolderRef, type ModifyRequestInput } from "@creditlock/core"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { createTestCreditEngine, FaultStorage, type TestCreditEngine } from "../src/index.js"

const holder: HolderRef = { customerId: "cus_1", holderType: "contracts", holderId: "sub_1" }
const credit = (value: number, reference?: string): ModifyRequestInput => ({
  reason: "top-up",
  modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value } }],
  ...(reference === undefined ? {} : { reference }),
})

/** Opens and locks the holder with faults disabled, then enables them. */
const ready = async (engine: TestCreditEngine) => {
  engine.faults.enabled = false
  await engine.openHolder(holder)
  const { lock } = await engine.lock(holder)
  engine.faults.enabled = true
  return lock.key
}

const outcome = async (call: Promise<unknown>): Promise<string> => {
  try {
    await call
    return "applied"
  } catch (error) {
    if (error instanceof CreditError) return error.code
    throw error
  }
}

const entries = async (engine: TestCreditEngine, reference: string) => {
  engine.faults.enabled = false
  const page = await engine.journal(holder, { limit: 1000 })
  engine.faults.enabled = true
  return page.entries.filter((e) => e.reference === reference).length
}

describe("each fault", () => {
  it("unavailable: StorageUnavailable, nothing applied", async () => {
    await using engine = createTestCreditEngine({ faults: { plan: [{ kind: "unavailable" }] } })
    const key = await ready(engine)
    expect(await outcome(engine.modify(holder, key, credit(5, "a")))).toBe("STORAGE_UNAVAILABLE")
    expect(await entries(engine, "a")).toBe(0)
    // The engine plans on its cached snapshot: the first call of the modification is the lookup of its reference.
    expect(engine.faults.injected().map((f) => [f.operation, f.kind])).toEqual([["findEntry", "unavailable"]])
  })

  it("unavailable on a commit (when: modifications): not applied", async () => {
    await using engine = createTestCreditEngine({
      faults: { plan: [{ kind: "unavailable" }], when: FaultStorage.modifications },
    })
    const key = await ready(engine)
    expect(await outcome(engine.modify(holder, key, credit(5, "a")))).toBe("STORAGE_UNAVAILABLE")
    expect(await entries(engine, "a")).toBe(0)
    expect(engine.faults.injected().map((f) => [f.operation, f.kind])).toEqual([["commit", "unavailable"]])
  })

  it("conflict: the engine plans again and applies once", async () => {
    await using engine = createTestCreditEngine({
      faults: { plan: [{ kind: "conflict" }, { kind: "conflict" }], when: FaultStorage.modifications },
    })
    const key = await ready(engine)
    expect(await outcome(engine.modify(holder, key, credit(5, "a")))).toBe("applied")
    expect(await entries(engine, "a")).toBe(1)
    expect(engine.faults.injected().map((f) => f.kind)).toEqual(["conflict", "conflict"])
  })

  it("lostReply: applied; the engine proves it by its witness and answers applied", async () => {
    await using engine = createTestCreditEngine({
      faults: { plan: [{ kind: "lostReply" }], when: FaultStorage.modifications },
    })
    const key = await ready(engine)
    const result = await engine.modify(holder, key, credit(5, "a"))
    expect(result.replayed).toBe(false)
    expect(await entries(engine, "a")).toBe(1)
    expect(engine.faults.injected().map((f) => f.kind)).toEqual(["lostReply"])
  })

  it("lostReplyUnproven: applied, answered OutcomeUnknown; a retry with the reference replays it", async () => {
    await using engine = createTestCreditEngine({
      settleTimeout: "30 millis",
      faults: { plan: [{ kind: "lostReplyUnproven" }], when: FaultStorage.modifications },
    })
    const key = await ready(engine)
    expect(await outcome(engine.modify(holder, key, credit(5, "a")))).toBe("OUTCOME_UNKNOWN")
    expect(await entries(engine, "a")).toBe(1)
    const kinds = engine.faults.injected().map((f) => f.kind)
    // The engine tried to read its witness and could not: the settle reads were refused.
    expect(kinds[0]).toBe("lostReplyUnproven")
    expect(kinds.slice(1).length).toBeGreaterThan(0)
    expect(new Set(kinds.slice(1))).toEqual(new Set(["outage"]))
    const retried = await engine.modify(holder, key, credit(5, "a"))
    expect(retried.replayed).toBe(true)
    expect((await engine.getCredit(holder)).current.credit[0]?.amount.value).toBe(5)
  })

  it("latency: the call takes that long and then runs", async () => {
    await using engine = createTestCreditEngine({
      faults: { plan: [{ kind: "pass", latencyMillis: 40 }], when: FaultStorage.modifications },
    })
    const key = await ready(engine)
    const started = performance.now()
    expect(await outcome(engine.modify(holder, key, credit(5, "a")))).toBe("applied")
    expect(performance.now() - started).toBeGreaterThanOrEqual(35)
    expect(engine.faults.injected()).toEqual([
      // open: load and commit; lock and modify plan on the cached snapshot: commit; lookup and commit.
      { call: 5, operation: "commit", ref: holder, kind: "latency", latencyMillis: 40 },
    ])
  })
})

describe("seeded injection", () => {
  const rates = { unavailable: 0.2, conflict: 0.2, lostReply: 0.2, latency: { probability: 0.3, maxMillis: 2 } }
  const workload = async (seed: number) => {
    await using engine = createTestCreditEngine({ faults: { seed, rates } })
    const key = await ready(engine)
    const outcomes: Array<string> = []
    for (let i = 0; i < 20; i++) outcomes.push(await outcome(engine.modify(holder, key, credit(i + 1, `r${i}`))))
    return { outcomes, injected: engine.faults.injected() }
  }

  it("the same seed injects the same faults into the same calls", async () => {
    const [a, b] = [await workload(42), await workload(42)]
    expect(a.injected.length).toBeGreaterThan(5)
    expect(b).toEqual(a)
  })

  it("another seed injects other faults", async () => {
    expect((await workload(7)).injected).not.toEqual((await workload(42)).injected)
  })

  it("rates are checked", () => {
    expect(() => createTestCreditEngine({ faults: { seed: 1, rates: { lostReply: 1.5 } } })).toThrow(RangeError)
    expect(() => createTestCreditEngine({ faults: { seed: 1, plan: [] } })).toThrow(TypeError)
  })
})

describe("driven by fast-check", () => {
  it("for any fault plan, every write is answered as applied, not applied or unknown — never the wrong one", async () => {
    await fc.assert(
      fc.asyncProperty(FaultStorage.plan({ maxLatencyMillis: 2, maxLength: 30 }), async (plan) => {
        await using engine = createTestCreditEngine({ settleTimeout: "20 millis", faults: { plan } })
        const key = await ready(engine)
        for (let i = 0; i < 6; i++) {
          const reference = `r${i}`
          const answer = await outcome(engine.modify(holder, key, credit(i + 1, reference)))
          const applied = await entries(engine, reference)
          if (answer === "applied") expect(applied, `${reference} answered applied`).toBe(1)
          else if (answer === "STORAGE_UNAVAILABLE") expect(applied, `${reference} answered not applied`).toBe(0)
          else {
            expect(answer).toBe("OUTCOME_UNKNOWN")
            expect(applied).toBeLessThanOrEqual(1)
          }
        }
        engine.faults.enabled = false
        const report = await engine.checkInvariants([holder])
        expect(report.violations).toEqual([])
      }),
      { numRuns: 60 },
    )
  })
})
