/**
 * Bytes on disk of the SQLite adapter: per holder (opened, with one modification) and per
 * additional journal entry. Prints one JSON line.
 *
 * @module
 */
import { mkdtempSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CreditEngine } from "@creditlock/core"
import { SqliteStorage } from "@creditlock/sqlite"
import { Effect, Layer } from "effect"

const holders = Number(process.argv[2] ?? 10_000)
const entries = Number(process.argv[3] ?? 10_000)
const dir = mkdtempSync(join(tmpdir(), "creditlock-footprint-"))
const filename = join(dir, "footprint.sqlite")
// Checkpointed file size: the main database file after the WAL is folded in.
const size = () => statSync(filename).size

const cycle = (engine: CreditEngine["Type"], holderId: string, value: number) =>
  Effect.gen(function* () {
    const ref = { customerId: `c-${holderId}`, holderType: "contracts", holderId } as const
    const { lock } = yield* engine.lock(ref)
    yield* engine.modify(ref, lock.key, {
      reason: "footprint",
      modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value } }],
    })
    yield* engine.unlock(ref, lock.key)
  })

const program = Effect.gen(function* () {
  const engine = yield* CreditEngine
  const empty = size()
  for (let i = 0; i < holders; i++) {
    yield* engine.openHolder({ customerId: `c-h${i}`, holderType: "contracts", holderId: `h${i}` })
    yield* cycle(engine, `h${i}`, 1_000)
  }
  return empty
})

const measure = (effect: Effect.Effect<number, unknown, CreditEngine>) =>
  Effect.runPromise(
    effect.pipe(Effect.provide(CreditEngine.layer().pipe(Layer.provide(SqliteStorage.layer({ filename }))))),
  )

try {
  const empty = await measure(program)
  const withHolders = size()
  await measure(
    Effect.gen(function* () {
      const engine = yield* CreditEngine
      for (let i = 0; i < entries; i++) yield* cycle(engine, "h0", 1)
      return 0
    }),
  )
  const withEntries = size()
  console.log(
    JSON.stringify({
      holders,
      bytesPerHolder: Math.round((withHolders - empty) / holders),
      entries,
      bytesPerJournalEntry: Math.round((withEntries - withHolders) / entries),
    }),
  )
} finally {
  rmSync(dir, { recursive: true, force: true })
}
