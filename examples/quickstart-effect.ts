/**
 * Quickstart, Effect style: open a holder, lock it, credit it, debit it, unlock it.
 * Run with `pnpm exec tsx examples/quickstart-effect.ts`.
 */
import { CreditEngine } from "@creditlock/core"
import { MemoryStorage } from "@creditlock/memory"
import { Console, Effect } from "effect"

const holder = { customerId: "cus_1001", holderType: "contracts", holderId: "sub_42" } as const

const program = Effect.gen(function* () {
  const credit = yield* CreditEngine
  yield* credit.openHolder(holder)

  const { lock } = yield* credit.lock(holder)
  yield* credit.modify(holder, lock.key, {
    reason: "Top-up",
    modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: 2_500 } }],
  })
  const after = yield* credit.modify(holder, lock.key, {
    reason: "Monthly bill",
    reference: "invoice-2026-11",
    modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: -1_200 } }],
  })
  yield* credit.unlock(holder, lock.key)

  const gbp = after.current.credit.find((c) => c.amount.currencyCode === "GBP")
  yield* Console.log(`GBP credit: ${gbp?.amount.value} pence (journal entry ${after.entryId})`)
  const report = yield* credit.verify(holder)
  yield* Console.log(`journal verified: ${report.ok}`)
}).pipe(
  // A holder locked by someone else is an expected outcome, not a crash.
  Effect.catchTag("CreditLocked", (e) => Console.log(`try again later: ${e.detail}`)),
)

program.pipe(Effect.provide(CreditEngine.layer()), Effect.provide(MemoryStorage.layer()), Effect.runPromise)
