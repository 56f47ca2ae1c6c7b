/**
 * The property both billing functions are held to: whatever the contention (fast-check's
 * scheduler orders every storage call of the concurrent bills) and whatever the store does (lost
 * replies, outages, conflicts, latency, drawn by fast-check), each invoice is charged at most once,
 * and exactly once when its bill resolved; the store's invariants hold.
 */
import type { AsyncCreditEngine, HolderRef } from "@creditlock/core"
import { createTestCreditEngine, FaultStorage } from "@creditlock/testing"
import fc from "fast-check"
import type { Invoice } from "./naive.js"

/** A billing function under test. */
export type Bill = (credit: AsyncCreditEngine, holder: HolderRef, invoice: Invoice) => Promise<unknown>

const holder: HolderRef = { customerId: "cus_1001", holderType: "contracts", holderId: "sub_42" }

/** Invoices with distinct ids, billed concurrently to one holder. */
const invoices = fc.uniqueArray(
  fc.record({ id: fc.constantFrom("2026-11", "2026-12", "2027-01"), amount: fc.integer({ min: 1, max: 3_000 }) }),
  { minLength: 1, maxLength: 3, selector: (invoice) => invoice.id },
)

/** Faults on the commits that move money: one or two lost replies, outages, conflicts. */
const faults = FaultStorage.plan({
  maxLength: 6,
  maxLatencyMillis: 3,
  kinds: [
    { kind: "pass", weight: 3 },
    { kind: "lostReply", weight: 1 },
    { kind: "lostReplyUnproven", weight: 1 },
    { kind: "unavailable", weight: 1 },
    { kind: "conflict", weight: 1 },
  ],
})

/** The billing property of `bill`, for `fc.assert` or `fc.check`. */
export const billsEachInvoiceOnce = (bill: Bill) =>
  fc.asyncProperty(fc.scheduler(), faults, invoices, async (scheduler, plan, billed) => {
    await using credit = createTestCreditEngine({
      settleTimeout: "20 millis",
      faults: {
        plan,
        when: FaultStorage.modifications,
        gate: (call) => scheduler.schedule(Promise.resolve(), call.operation),
      },
    })
    const settle = <A>(work: Promise<A>) => scheduler.waitFor(work)
    await settle(
      (async () => {
        await credit.openHolder(holder)
        credit.faults.enabled = false
        const { lock } = await credit.lock(holder)
        await credit.modify(holder, lock.key, {
          reason: "top-up",
          modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: 10_000 } }],
        })
        await credit.unlock(holder, lock.key)
        credit.faults.enabled = true
      })(),
    )
    const outcomes = await settle(Promise.allSettled(billed.map((invoice) => bill(credit, holder, invoice))))

    credit.faults.enabled = false
    const journal = await settle(credit.journal(holder, { limit: 1000 }))
    for (const [i, invoice] of billed.entries()) {
      const charges = journal.entries.filter((e) => e.reason === `invoice ${invoice.id}`).length
      if (charges > 1) throw new Error(`double charge: invoice ${invoice.id} was charged ${charges} times`)
      if (outcomes[i]?.status === "fulfilled" && charges !== 1) {
        throw new Error(`lost charge: the bill of invoice ${invoice.id} resolved but charged ${charges} times`)
      }
    }
    const report = await settle(credit.checkInvariants([holder]))
    if (!report.ok) throw new Error(report.violations.map((v) => `${v.invariant}: ${v.detail}`).join("\n"))
  })
