/**
 * Quickstart with the Promise facade, for services that do not use Effect.
 * Run with `pnpm exec tsx examples/quickstart-promise.ts`.
 */
import { CreditError, createCreditEngine } from "@creditlock/core"
import { MemoryStorage } from "@creditlock/memory"

const holder = { customerId: "cus_1001", holderType: "contracts", holderId: "sub_42" } as const

const main = async () => {
  await using credit = createCreditEngine({ storage: MemoryStorage.layer() })
  await credit.openHolder(holder)

  const { lock } = await credit.lock(holder)
  try {
    await credit.modify(holder, lock.key, {
      reason: "Top-up",
      modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: 2_500 } }],
    })
    await credit.modify(holder, lock.key, {
      reason: "Too big a bill",
      modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: -9_999 } }],
    })
  } catch (error) {
    if (!(error instanceof CreditError)) throw error
    console.log(`refused: ${error.status} ${error.code} — ${error.detail}`)
  } finally {
    await credit.unlock(holder, lock.key)
  }

  const { current } = await credit.getCredit(holder)
  for (const c of current.credit) console.log(`${c.amount.currencyCode} credit: ${c.amount.value}`)
  console.log(`journal verified: ${(await credit.verify(holder)).ok}`)
}

await main()
