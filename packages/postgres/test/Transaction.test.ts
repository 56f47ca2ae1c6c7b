/**
 * Credit inside the caller's transaction: an invoice row and its debit commit together or not at
 * all; nothing is visible to others before COMMIT; events come back only after COMMIT; a
 * conflicting writer waits for the transaction; a serialization failure (REPEATABLE READ) and a
 * transaction aborted by a failed statement answer StorageUnavailable with nothing applied.
 */
import { randomUUID } from "node:crypto"
import { CreditEngine, CreditError, type HolderRef } from "@creditlock/core"
import { change, contract } from "@creditlock/test-suite"
import { type Database, freshDatabase } from "@creditlock/test-suite/postgres-server"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber, Layer, Redacted } from "effect"
import { Pool } from "pg"
import { PostgresStorage, PostgresTransaction } from "../src/index.js"

// Fails the whole file, saying how to install and start PostgreSQL, when the server is not there.
const db: Database = await freshDatabase()
const pool = new Pool({ connectionString: db.url, max: 4 })
pool.on("error", () => undefined)
await pool.query("CREATE TABLE invoices (id text PRIMARY KEY, customer text NOT NULL, amount bigint NOT NULL)")
afterAll(async () => {
  await pool.end()
  await db.drop()
})

/** A long-lived engine of the application, over its own pool (it also migrates the schema). */
const outside = CreditEngine.layer().pipe(Layer.provideMerge(PostgresStorage.layer({ connectionString: db.url })))

const withOutside = <A, E>(f: (engine: CreditEngine["Type"]) => Effect.Effect<A, E>) =>
  Effect.provide(Effect.flatMap(CreditEngine, f), outside)

const gbp = (ref: HolderRef) =>
  withOutside((e) => e.getCredit(ref)).pipe(
    Effect.map((view) => view.current.credit.find((c) => c.amount.currencyCode === "GBP")?.amount.value ?? 0),
  )

const invoices = (id: string) =>
  Effect.promise(() => pool.query<{ amount: string }>("SELECT amount::text FROM invoices WHERE id = $1", [id])).pipe(
    Effect.map((result) => result.rows.map((r) => Number(r.amount))),
  )

/** A holder opened with 1,000 GBP, and a live lock on it. */
const funded = Effect.gen(function* () {
  const ref = contract()
  const lock = yield* withOutside((e) =>
    Effect.gen(function* () {
      yield* e.openHolder(ref)
      const { lock } = yield* e.lock(ref)
      yield* e.modify(ref, lock.key, change("GBP", 1_000))
      return lock
    }),
  )
  return { ref, lock }
})

describe("postgres: credit inside the caller's transaction", () => {
  it.live("the invoice row and the debit commit together; others see neither before COMMIT", () =>
    Effect.gen(function* () {
      const { ref, lock } = yield* funded
      const invoice = `inv-${randomUUID()}`
      const committed = yield* PostgresTransaction.run(pool, ({ client, credit }) =>
        Effect.gen(function* () {
          yield* Effect.promise(() =>
            client.query("INSERT INTO invoices (id, customer, amount) VALUES ($1, $2, $3)", [
              invoice,
              ref.customerId,
              400,
            ]),
          )
          const debit = yield* credit.modify(ref, lock.key, change("GBP", -400, "invoice", invoice))
          // Inside, the transaction sees its own write; outside, nothing has happened yet.
          expect((yield* credit.getCredit(ref)).current.credit[0]?.amount.value).toBe(600)
          expect(yield* gbp(ref)).toBe(1_000)
          expect(yield* invoices(invoice)).toEqual([])
          return debit.entryId
        }),
      )
      expect(yield* gbp(ref)).toBe(600)
      expect(yield* invoices(invoice)).toEqual([400])
      const entry = yield* withOutside((e) => e.journal(ref))
      expect(entry.entries.filter((e) => e.reference === invoice).map((e) => e.id)).toEqual([committed.value])
      expect((yield* withOutside((e) => e.verify(ref))).ok).toBe(true)
    }),
  )

  it.live("a body that fails rolls back the invoice and the debit; no events", () =>
    Effect.gen(function* () {
      const { ref, lock } = yield* funded
      const invoice = `inv-${randomUUID()}`
      const result = yield* Effect.either(
        PostgresTransaction.run(pool, ({ client, credit }) =>
          Effect.gen(function* () {
            yield* Effect.promise(() =>
              client.query("INSERT INTO invoices (id, customer, amount) VALUES ($1, $2, $3)", [
                invoice,
                ref.customerId,
                5,
              ]),
            )
            yield* credit.modify(ref, lock.key, change("GBP", -5, "invoice", invoice))
            yield* credit.unlock(ref, lock.key)
            return yield* Effect.fail("the payment provider said no" as const)
          }),
        ),
      )
      expect(result).toEqual(Either.left("the payment provider said no"))
      expect(yield* gbp(ref)).toBe(1_000)
      expect(yield* invoices(invoice)).toEqual([])
      // The unlock was rolled back too: the lock still holds.
      const again = yield* Effect.either(withOutside((e) => e.lock(ref)))
      expect(again._tag === "Left" && again.left._tag).toBe("CreditLocked")
    }),
  )

  it.live("events are handed back after COMMIT: a lock granted inside the transaction", () =>
    Effect.gen(function* () {
      const ref = contract()
      yield* withOutside((e) => e.openHolder(ref))
      const committed = yield* PostgresTransaction.run(pool, ({ credit }) =>
        Effect.map(credit.lock(ref), ({ lock }) => lock.token),
      )
      expect(committed.events.map((e) => e._tag)).toEqual(["LockGranted"])
      expect(committed.value).toBe(1)
    }),
  )

  it.live("a writer of the same holder waits for the transaction, then applies after it", () =>
    Effect.gen(function* () {
      const { ref, lock } = yield* funded
      const committed = yield* PostgresTransaction.run(pool, ({ credit }) =>
        Effect.gen(function* () {
          yield* credit.modify(ref, lock.key, change("GBP", -100))
          // The application's engine writes the same holder meanwhile: it waits on the row lock.
          const waiting = yield* Effect.fork(withOutside((e) => e.modify(ref, lock.key, change("GBP", -50))))
          yield* Effect.sleep("300 millis")
          expect(waiting.unsafePoll()).toBeNull()
          return waiting
        }),
      )
      const after = yield* Fiber.join(committed.value)
      expect(after.current.credit[0]?.amount.value).toBe(850)
      expect((yield* withOutside((e) => e.verify(ref))).ok).toBe(true)
    }),
  )

  it.live(
    "at REPEATABLE READ a concurrent commit makes the transaction fail with StorageUnavailable, nothing applied; a retry succeeds",
    () =>
      Effect.gen(function* () {
        const { ref, lock } = yield* funded
        const repeatable = new Pool({
          connectionString: db.url,
          max: 1,
          options: "-c default_transaction_isolation=repeatable\\ read",
        })
        repeatable.on("error", () => undefined)
        let concurrent = true
        const attempt = PostgresTransaction.run(repeatable, ({ credit }) =>
          Effect.gen(function* () {
            yield* credit.getCredit(ref) // the transaction's snapshot is taken here
            // Only in the first attempt: another writer commits the holder after that snapshot.
            if (concurrent) yield* withOutside((e) => e.modify(ref, lock.key, change("GBP", 1)))
            concurrent = false
            return yield* credit.modify(ref, lock.key, change("GBP", -10))
          }),
        )
        const first = yield* Effect.either(attempt)
        expect(first._tag === "Left" && first.left._tag).toBe("StorageUnavailable")
        expect(yield* gbp(ref)).toBe(1_001)
        const retried = yield* attempt
        expect(retried.value.current.credit[0]?.amount.value).toBe(991)
        yield* Effect.promise(() => repeatable.end())
      }),
  )

  it.live(
    "a statement that failed inside the body aborts the transaction: COMMIT answers ROLLBACK → StorageUnavailable",
    () =>
      Effect.gen(function* () {
        const { ref, lock } = yield* funded
        const result = yield* Effect.either(
          PostgresTransaction.run(pool, ({ client, credit }) =>
            Effect.gen(function* () {
              yield* credit.modify(ref, lock.key, change("GBP", -1))
              // The caller swallows an error of its own statement and returns as if all went well.
              yield* Effect.promise(() => client.query("SELECT 1 / 0").catch(() => undefined))
            }),
          ),
        )
        expect(result._tag === "Left" && result.left._tag).toBe("StorageUnavailable")
        expect(yield* gbp(ref)).toBe(1_000)
      }),
  )

  it("runPromise: the same with async functions and the Promise facade", async () => {
    const { ref, lock } = await Effect.runPromise(funded)
    const invoice = `inv-${randomUUID()}`
    const { value, events } = await PostgresTransaction.runPromise(pool, async ({ client, credit }) => {
      await client.query("INSERT INTO invoices (id, customer, amount) VALUES ($1, $2, $3)", [
        invoice,
        ref.customerId,
        250,
      ])
      const bill = await credit.modify(ref, Redacted.value(lock.key), change("GBP", -250, "invoice", invoice))
      await credit.unlock(ref, Redacted.value(lock.key))
      return bill.current.credit[0]?.amount.value
    })
    expect(value).toBe(750)
    expect(events.map((e) => e._tag)).toEqual(["LockReleased"])
    expect(await Effect.runPromise(invoices(invoice))).toEqual([250])
    await expect(
      PostgresTransaction.runPromise(pool, async ({ credit }) => {
        await credit.modify(ref, "not-the-key", change("GBP", -1))
      }),
    ).rejects.toBeInstanceOf(CreditError)
    const thrown = new Error("mine")
    await expect(
      PostgresTransaction.runPromise(pool, async () => {
        throw thrown
      }),
    ).rejects.toBe(thrown)
  })
})
