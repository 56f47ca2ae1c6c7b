/**
 * The library as a benchmark target: the Promise facade over any storage layer, as a service
 * that does not use Effect would call it.
 *
 * @module
 */
import { createCreditEngine, engineLockRefusals, type HolderRef } from "@creditlock/core"
import { Storage } from "@creditlock/core/storage"
import { PostgresStorage } from "@creditlock/postgres"
import { RedisStorage } from "@creditlock/redis"
import { Effect, Layer, Metric } from "effect"
import { Cluster, Redis } from "ioredis"
import pg from "pg"
import type { Target } from "../Harness.js"
import { countingQueries } from "./PostgresBaseline.js"
import type { RedisConnection } from "./RedisBaseline.js"
import { countingCommands } from "./RedisCommands.js"

const ref = (holderId: string): HolderRef => ({ customerId: `c-${holderId}`, holderType: "contracts", holderId })

const change = (delta: number) => ({
  reason: "bench",
  modifications: [{ type: "monetary" as const, changeAmount: { currencyCode: "GBP", value: delta } }],
})

/** `storage` with a count of the calls made into it (the health ping aside). */
const countingCalls = (storage: Layer.Layer<Storage, unknown>) => {
  let calls = 0
  const counted =
    <A extends ReadonlyArray<unknown>, R>(f: (...args: A) => R) =>
    (...args: A): R => {
      calls++
      return f(...args)
    }
  const layer = Layer.effect(
    Storage,
    Effect.map(Storage, (s) =>
      Storage.of({
        ...s,
        load: counted(s.load),
        commit: counted(s.commit),
        lookup: counted(s.lookup),
        findEntry: counted(s.findEntry),
        journal: counted(s.journal),
      }),
    ),
  ).pipe(Layer.provide(storage))
  return { layer, count: async () => calls }
}

/**
 * `CreditEngine` (through `createCreditEngine`) over `storage`. Round trips are the store's own
 * count when `roundTrips` is given (a server's processed commands), else the calls into the
 * storage made by this process.
 */
export const engineTarget = (
  name: string,
  storage: Layer.Layer<Storage, unknown>,
  roundTrips?: Target["roundTrips"],
): Target => {
  const counting = roundTrips === undefined ? countingCalls(storage) : undefined
  const engine = createCreditEngine({ storage: counting?.layer ?? storage })
  return {
    name,
    roundTrips: roundTrips ?? { scope: "process", count: (counting as ReturnType<typeof countingCalls>).count },
    open: async (id) => {
      await engine.openHolder(ref(id))
    },
    // The recommended pattern: withLock waits for the lock (in turn with this engine's other
    // callers) and releases it.
    cycle: async (id, delta) => {
      const started = performance.now()
      let waitedMs = 0
      let applied = false
      try {
        await engine.withLock(ref(id), async ({ lock }) => {
          waitedMs = performance.now() - started
          await engine.modify(ref(id), lock.key, change(delta))
          applied = true
        })
        return { waitedMs, applied, failed: false }
      } catch {
        return { waitedMs, applied, failed: true }
      }
    },
    refusals: () =>
      Effect.runPromise(
        Metric.value(
          engineLockRefusals.pipe(Metric.tagged("operation", "lock"), Metric.tagged("reason", "CreditLocked")),
        ),
      ).then((state) => state.count),
    // Contention is the normal case here: the refusal comes back as a value.
    lock: (id) => engine.tryLock(ref(id)).then((r) => (r.granted ? { key: r.lock.key } : ("locked" as const))),
    modify: async (id, key, delta) => {
      await engine.modify(ref(id), key, change(delta))
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

/**
 * The library on Redis (a standalone server's URL, or a Cluster's nodes), over a client the
 * target opens with the adapter's no-resend settings, so its commands can be counted.
 */
export const redisLibrary = (connection: RedisConnection, keyPrefix: string): Target => {
  const { client, roundTrips } = countingCommands(
    typeof connection === "string"
      ? new Redis(connection, { ...RedisStorage.noResendOptions, lazyConnect: true })
      : new Cluster([...connection], { ...RedisStorage.noResendClusterOptions, lazyConnect: true }),
  )
  const target = engineTarget(
    typeof connection === "string" ? "CreditEngine + RedisStorage" : "CreditEngine + RedisStorage (Cluster)",
    RedisStorage.layerFromClient(client, { keyPrefix }),
    roundTrips,
  )
  return {
    ...target,
    close: async () => {
      await target.close()
      await client.quit()
    },
  }
}

/** The library on PostgreSQL: the database at `url`, its tables in `schema`, over a pool of `poolSize`. */
export const postgresLibrary = (url: string, schema: string, poolSize = 10): Target => {
  const pool = new pg.Pool({ connectionString: url, max: poolSize })
  pool.on("error", () => undefined)
  const target = engineTarget(
    "CreditEngine + PostgresStorage",
    PostgresStorage.layerFromPool(pool, { schema }),
    countingQueries(pool),
  )
  return {
    ...target,
    close: async () => {
      await target.close()
      await pool.end()
    },
  }
}
