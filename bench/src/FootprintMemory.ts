/**
 * Resident memory of the memory adapter per 100,000 holders, each opened and given one
 * modification (so a holder carries a balance and two journal entries). Run in its own process
 * with `--expose-gc`; prints one JSON line.
 *
 * @module
 */
import { CreditEngine } from "@creditlock/core"
import { MemoryStorage } from "@creditlock/memory"
import { Effect, Layer } from "effect"

const holders = Number(process.argv[2] ?? 100_000)
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error("run with node --expose-gc")

const program = Effect.gen(function* () {
  const engine = yield* CreditEngine
  gc()
  const before = process.memoryUsage()
  for (let i = 0; i < holders; i++) {
    const ref = { customerId: `c${i % 1000}`, holderType: "contracts", holderId: `h${i}` } as const
    yield* engine.openHolder(ref)
    const { lock } = yield* engine.lock(ref)
    yield* engine.modify(ref, lock.key, {
      reason: "initial credit",
      modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: 1_000 } }],
    })
    yield* engine.unlock(ref, lock.key)
  }
  gc()
  const after = process.memoryUsage()
  console.log(
    JSON.stringify({
      holders,
      rssBytes: after.rss - before.rss,
      heapBytes: after.heapUsed - before.heapUsed,
      bytesPerHolder: Math.round((after.heapUsed - before.heapUsed) / holders),
    }),
  )
})

await Effect.runPromise(program.pipe(Effect.provide(CreditEngine.layer().pipe(Layer.provide(MemoryStorage.layer())))))
