/**
 * A naive "bill a customer" function: lock, debit, unlock, and on a 503 or a 423 try the whole
 * thing again. It reads well and passes every test without faults — but a retry after a lost reply
 * (OUTCOME_UNKNOWN: the debit may have been applied) debits again. See billing.test.ts, where the
 * property test finds that double charge.
 */
import { type AsyncCreditEngine, CreditError, type HolderRef } from "@creditlock/core"

/** An invoice to charge: its id and its amount in pence. */
export interface Invoice {
  readonly id: string
  readonly amount: number
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Charges `invoice` to `holder`'s GBP credit — at least once, and sometimes more. */
export const billNaive = async (credit: AsyncCreditEngine, holder: HolderRef, invoice: Invoice): Promise<void> => {
  for (let attempt = 1; attempt <= 10; attempt++) {
    try {
      const { lock } = await credit.lock(holder)
      try {
        await credit.modify(holder, lock.key, {
          reason: `invoice ${invoice.id}`,
          modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: -invoice.amount } }],
        })
        return
      } finally {
        await credit.unlock(holder, lock.key)
      }
    } catch (error) {
      // "Service unavailable" or "locked": try again shortly.
      if (!(error instanceof CreditError) || (error.status !== 503 && error.status !== 423)) throw error
      await pause(2)
    }
  }
  throw new Error(`invoice ${invoice.id} could not be billed`)
}
