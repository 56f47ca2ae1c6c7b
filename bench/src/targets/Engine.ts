/**
 * The library as a benchmark target: the Promise facade over any storage layer, as a service
 * that does not use Effect would call it.
 *
 * @module
 */
import { CreditError, createCreditEngine, type HolderRef, type Storage } from "@creditlock/core"
import type { Layer } from "effect"
import type { Target } from "../Harness.js"

const ref = (holderId: string): HolderRef => ({ customerId: `c-${holderId}`, holderType: "contracts", holderId })

/** `CreditEngine` (through `createCreditEngine`) over `storage`. */
export const engineTarget = (name: string, storage: Layer.Layer<Storage, unknown>): Target => {
  const engine = createCreditEngine({ storage })
  return {
    name,
    open: async (id) => {
      await engine.openHolder(ref(id))
    },
    lock: (id) =>
      engine.lock(ref(id)).then(
        (r) => ({ key: r.lock.key }),
        (e: unknown) => {
          if (e instanceof CreditError && e.tag === "CreditLocked") return "locked" as const
          throw e
        },
      ),
    modify: async (id, key, delta) => {
      await engine.modify(ref(id), key, {
        reason: "bench",
        modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: delta } }],
      })
    },
    unlock: (id, key) => engine.unlock(ref(id), key),
    read: async (id) => {
      const view = await engine.getCredit(ref(id))
      let modifications = 0
      let after = 0
      for (;;) {
        const page = await engine.journal(ref(id), { after, limit: 1000 })
        modifications += page.entries.filter((e) => e.kind === "modification").length
        if (page.next === null) break
        after = page.next
      }
      return { value: view.current.credit[0]?.amount.value ?? 0, modifications }
    },
    close: () => engine.close(),
  }
}
