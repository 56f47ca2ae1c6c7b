// The Promise facade over memory, SQLite (the file named by argv[2]), and, when they are named,
// Redis (argv[3]) and PostgreSQL (the database argv[4], schema argv[5]) — from plain ESM
// JavaScript; prints what it saw as JSON for release/test/consumer.test.ts.
import { CreditError, createCreditEngine } from "@creditlock/core"
import { MemoryStorage } from "@creditlock/memory"
import { SqliteStorage } from "@creditlock/sqlite"

const [filename, redisUrl, postgresUrl, postgresSchema] = process.argv.slice(2)
const holder = { customerId: "cus_1001", holderType: "contracts", holderId: "sub_42" }

const exercise = async (storage) => {
  const credit = createCreditEngine({ storage })
  try {
    const opened = await credit.openHolder(holder, { balanceGroupId: "bg-1001" })
    const { lock } = await credit.lock(holder)
    const request = {
      reason: "Top-up",
      reference: "top-up-1",
      modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: 2_500 } }],
    }
    const first = await credit.modify(holder, lock.key, request)
    const retry = await credit.modify(holder, lock.key, request)
    let refused = null
    try {
      await credit.modify(holder, lock.key, {
        reason: "Too big a bill",
        modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: -9_999 } }],
      })
    } catch (error) {
      if (!(error instanceof CreditError)) throw error
      refused = { status: error.status, code: error.code }
    }
    await credit.unlock(holder, lock.key)
    const view = await credit.getCredit(holder)
    const report = await credit.verify(holder)
    return {
      created: opened.created,
      balanceGroupId: view.balanceGroupId,
      lockKeyType: typeof lock.key,
      replayed: [first.replayed, retry.replayed],
      sameEntry: first.entryId === retry.entryId,
      refused,
      credit: view.current.credit.map((c) => ({ currencyCode: c.amount.currencyCode, value: c.amount.value })),
      verified: report.ok,
      entries: report.entries,
    }
  } finally {
    await credit.close()
  }
}

const memory = await exercise(MemoryStorage.layer())
const sqlite = await exercise(SqliteStorage.layer({ filename }))
// The SQLite file outlives the engine: a second engine on it sees the committed state.
const reopened = createCreditEngine({ storage: SqliteStorage.layer({ filename }) })
const again = await reopened.getCredit(holder)
await reopened.close()
// Loaded only when asked for, so a project without the Redis adapter runs the rest.
const redis =
  redisUrl === undefined
    ? null
    : await exercise((await import("@creditlock/redis")).RedisStorage.layer({ url: redisUrl }))
const postgres =
  postgresUrl === undefined
    ? null
    : await exercise(
        (await import("@creditlock/postgres")).PostgresStorage.layer({
          connectionString: postgresUrl,
          schema: postgresSchema,
        }),
      )
console.log(
  JSON.stringify({
    memory,
    sqlite,
    reopened: again.current.credit.map((c) => c.amount.value),
    redis,
    postgres,
  }),
)
