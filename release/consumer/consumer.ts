// Type-checked by release/test/consumer.test.ts (tsc --noEmit, strict, under node16 and bundler)
// in a project that installed the packed tarballs: the Effect API, the Promise facade, both adapters
// and the adapter-author API at @creditlock/core/storage.
import { CreditEngine, CreditError, createCreditEngine, type HolderRef } from "@creditlock/core"
import { type CommitRequest, encodeDocument, holderKey, Storage } from "@creditlock/core/storage"
import { MemoryStorage } from "@creditlock/memory"
import { PostgresStorage } from "@creditlock/postgres"
import { SqliteStorage } from "@creditlock/sqlite"
import { Effect, type Layer, Redacted } from "effect"

const holder: HolderRef = { customerId: "cus_1001", holderType: "contracts", holderId: "sub_42" }

// The Effect API, as in the README quickstart.
const program = Effect.gen(function* () {
  const credit = yield* CreditEngine
  yield* credit.openHolder(holder, { balanceGroupId: "bg-1001" })
  const { lock } = yield* credit.lock(holder)
  const result = yield* credit.modify(holder, lock.key, {
    reason: "Top-up",
    reference: "top-up-1",
    modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: 2_500 } }],
  })
  yield* credit.unlock(holder, lock.key)
  return result.current.credit.map((c) => c.amount.value)
})
const values: Promise<ReadonlyArray<number>> = program.pipe(
  Effect.provide(CreditEngine.layer()),
  Effect.provide(MemoryStorage.layer()),
  Effect.runPromise,
)

// The Promise facade over any adapter; storage layers are plain Effect layers.
const storages: ReadonlyArray<Layer.Layer<Storage, unknown>> = [
  MemoryStorage.layer(),
  SqliteStorage.layer({ filename: "./credit.sqlite" }),
  PostgresStorage.layer({
    connectionString: Redacted.make("postgres://billing@127.0.0.1:5432/billing"),
    schema: "credit",
    statementTimeout: "2 seconds",
  }),
]
export const promiseFacade = async (): Promise<number> => {
  let total = 0
  for (const storage of storages) {
    await using credit = createCreditEngine({ storage })
    await credit.openHolder(holder)
    const { lock } = await credit.lock(holder)
    const key: string = lock.key
    try {
      await credit.modify(holder, key, {
        reason: "Top-up",
        modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: 100 } }],
      })
    } catch (error) {
      if (error instanceof CreditError) total += error.status
    } finally {
      await credit.unlock(holder, key)
    }
    total += (await credit.verify(holder)).entries
  }
  return total
}

// What an adapter author reaches at the storage subpath.
export const adapterApi = (request: CommitRequest): string =>
  `${holderKey(request.ref)} ${encodeDocument(request.document).length}`
export const storageTag: typeof Storage = Storage
export { values }
