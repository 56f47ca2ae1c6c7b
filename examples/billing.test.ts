/**
 * The worked example of @creditlock/testing: the billing property (billing/property.ts) finds the
 * naive function's double charge, and holds for the safe one.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { billNaive } from "./billing/naive.js"
import { billsEachInvoiceOnce } from "./billing/property.js"
import { bill } from "./billing/safe.js"

describe("billing under contention, lost replies and outages", () => {
  it("the property test finds the naive function's double charge", async () => {
    const result = await fc.check(billsEachInvoiceOnce(billNaive), { numRuns: 100 })
    expect(result.failed, "fast-check found no counterexample").toBe(true)
    expect(String(result.errorInstance)).toMatch(/double charge: invoice \S+ was charged \d+ times/)
    // The shrunk counterexample names the fault behind it: a lost reply the engine could not settle.
    expect(fc.stringify(result.counterexample)).toContain("lostReplyUnproven")
  }, 120_000)

  it("the safe function (reference + withLock) passes the same property", async () => {
    await fc.assert(billsEachInvoiceOnce(bill), { numRuns: 100 })
  }, 120_000)
})
