// The Effect quickstart (examples/quickstart-effect.ts) in plain JavaScript: prints the GBP
// credit after a top-up and a bill, and whether the journal verifies, as JSON.
import { CreditEngine } from "@creditlock/core"
import { MemoryStorage } from "@creditlock/memory"
import { Effect } from "effect"

const holder = { customerId: "cus_1001", holderType: "contracts", holderId: "sub_42" }

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
  const report = yield* credit.verify(holder)
  return { gbp: gbp?.amount.value, verified: report.ok }
})

const result = await program.pipe(
  Effect.provide(CreditEngine.layer()),
  Effect.provide(MemoryStorage.layer()),
  Effect.runPromise,
)
console.log(JSON.stringify(result))
