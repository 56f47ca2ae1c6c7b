/**
 * The same "bill a customer" function, made exactly-once: the debit carries the invoice as its
 * `reference`, so a retry after an unknown outcome replays the original debit instead of applying
 * another, and `withLock` waits out contention and always releases the lock. A withLock that
 * rejects with LOCK_EXPIRED after the debit was applied is retried the same way: the reference
 * makes the retry answer the debit already made.
 */
import { type AsyncCreditEngine, CreditError, type HolderRef, type ModifyResult } from "@creditlock/core"
import type { Invoice } from "./naive.js"

/** The failures after which the whole call is safely repeated (with the same reference). */
const retryable = new Set(["STORAGE_UNAVAILABLE", "OUTCOME_UNKNOWN", "LOCK_EXPIRED", "LOCK_NOT_HELD", "CREDIT_LOCKED"])

/** Charges `invoice` to `holder`'s GBP credit exactly once, however often it is retried. */
export const bill = async (credit: AsyncCreditEngine, holder: HolderRef, invoice: Invoice): Promise<ModifyResult> => {
  const request = {
    reason: `invoice ${invoice.id}`,
    reference: `invoice:${invoice.id}`,
    modifications: [{ type: "monetary" as const, changeAmount: { currencyCode: "GBP", value: -invoice.amount } }],
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await credit.withLock(holder, ({ lock }) => credit.modify(holder, lock.key, request), {
        wait: "30 seconds",
      })
    } catch (error) {
      if (attempt < 10 && error instanceof CreditError && retryable.has(error.code)) continue
      throw error
    }
  }
}
