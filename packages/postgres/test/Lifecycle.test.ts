/**
 * Connections and statements at the edges of a call's life: a transaction whose end was not
 * confirmed never goes back to the pool; an interrupt delivered while a transaction waits for a
 * connection still gives the connection back; a call interrupted before its statement left never
 * sends it; nothing of a transaction's engine is sent after its COMMIT; a facade call left running
 * when the body resolves rolls the transaction back; a pooled connection left inside a transaction
 * answers StorageUnavailable, never a false Committed; a long statement timeout bounds COMMIT as
 * it says.
 */
import { randomUUID } from "node:crypto"
import { CreditEngine, CreditError, type HolderRef } from "@creditlock/core"
import { type CommitRequest, Storage, type StoredHolder } from "@creditlock/core/storage"
import { change, contract } from "@creditlock/test-suite"
import { type Database, freshDatabase } from "@creditlock/test-suite/postgres-server"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Either, Fiber, Layer, Option, Redacted } from "effect"
import { Client, Pool } from "pg"
import { PostgresStorage, PostgresTransaction } from "../src/index.js"

// Fails the whole file, saying how to install and start PostgreSQL, when the server is not there.
const db: Database = await freshDatabase()
afterAll(() => db.drop())

/** The application's long-lived engine, over a pool of its own (it also migrates the schema). */
const outside = CreditEngine.layer().pipe(Layer.provideMerge(PostgresStorage.layer({ connectionString: db.url })))

const withOutside = <A, E>(f: (engine: CreditEngine["Type"]) => Effect.Effect<A, E>) =>
  Effect.provide(Effect.flatMap(CreditEngine, f), outside)

const gbp = (ref: HolderRef) =>
  withOutside((e) => e.getCredit(ref)).pipe(
    Effect.map((view) => view.current.credit.find((c) => c.amount.currencyCode === "GBP")?.amount.value ?? 0),
  )

/** A holder opened with 1,000 GBP, and a live lock on it. */
const funded = withOutside((e) =>
  Effect.gen(function* () {
    const ref = contract()
    yield* e.openHolder(ref)
    const { lock } = yield* e.lock(ref)
    yield* e.modify(ref, lock.key, change("GBP", 1_000))
    return { ref, lock }
  }),
)

/** A pool of the test's own, ended when the test ends; `sent` records every statement its connections send. */
const recordedPool = (max: number, application = `creditlock-${randomUUID()}`) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const pool = new Pool({ connectionString: db.url, max, application_name: application })
      pool.on("error", () => undefined)
      const sent: Array<string> = []
      pool.on("connect", (client) => {
        const connection = (
          client as unknown as { connection: { query: (text: string) => void; parse: (m: { text: string }) => void } }
        ).connection
        // What leaves the process: simple queries and the parse step of extended ones.
        const query = connection.query.bind(connection)
        const parse = connection.parse.bind(connection)
        connection.query = (text) => {
          sent.push(text)
          query(text)
        }
        connection.parse = (message) => {
          sent.push(message.text)
          parse(message)
        }
      })
      return { pool, sent, application }
    }),
    ({ pool }) => Effect.promise(() => pool.end()),
  )

const admin = Effect.acquireRelease(
  Effect.promise(async () => {
    const client = new Client({ connectionString: db.url })
    client.on("error", () => undefined)
    await client.connect()
    return client
  }),
  (client) => Effect.promise(() => client.end().catch(() => undefined)),
)

/** The commit appending one GBP credit to a stored holder. */
const credit = (ref: HolderRef, stored: StoredHolder, value: number): CommitRequest => {
  const seq = stored.document.journalSeq + 1
  const before = stored.document.balances[0]?.value ?? 0
  const id = randomUUID()
  return {
    ref,
    expected: stored.revision,
    document: {
      ...stored.document,
      journalSeq: seq,
      balances: [{ currencyCode: "GBP", value: before + value, updatedAt: seq }],
    },
    entries: [
      {
        id,
        seq,
        at: seq,
        holder: ref,
        kind: "modification",
        reason: "lifecycle test",
        changes: [{ currencyCode: "GBP", delta: value, before, after: before + value }],
      },
    ],
    index: [{ kind: "order", value: id }],
    claims: [],
  }
}

describe("postgres: the end of a transaction", () => {
  it.live(
    "interrupted while its ROLLBACK waits behind a stuck statement: the connection is destroyed, never reused inside the transaction",
    () =>
      Effect.gen(function* () {
        const { ref, lock } = yield* funded
        const { pool, application } = yield* recordedPool(1)
        const storage = yield* PostgresStorage.fromPool(pool)
        const blocker = yield* admin
        const observer = yield* admin
        yield* Effect.promise(() => blocker.query("BEGIN"))
        yield* Effect.promise(() =>
          blocker.query("SELECT 1 FROM creditlock.holders WHERE customer_id = $1 FOR UPDATE", [ref.customerId]),
        )
        // The body's commit waits on the row lock; its reply is given up after 2 s, the engine
        // settles for 200 ms, the body fails, and ROLLBACK is queued behind the stuck commit.
        const interrupted = yield* Effect.either(
          Effect.timeout(
            PostgresTransaction.run(pool, ({ credit }) => credit.modify(ref, lock.key, change("GBP", -10)), {
              statementTimeout: "1 second",
              engine: { settleTimeout: "200 millis" },
            }),
            "3200 millis",
          ),
        )
        expect(Either.isLeft(interrupted) && interrupted.left._tag).toBe("TimeoutException")
        // Past the moment the queued ROLLBACK would have been dropped unsent; then the lock goes.
        yield* Effect.sleep("2 seconds")
        yield* Effect.promise(() => blocker.query("ROLLBACK"))
        const idleInTransaction = () =>
          observer
            .query<{ n: string }>(
              "SELECT count(*)::text AS n FROM pg_stat_activity WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
              [application],
            )
            .then((r) => Number(r.rows[0]?.n ?? 0))
        // The stuck commit finishes once the lock is gone; its connection must not stay in a transaction.
        yield* Effect.sleep("500 millis")
        expect(yield* Effect.promise(idleInTransaction)).toBe(0)
        // The pool serves a commit that others can see.
        const engine = Context.get(
          yield* Layer.build(CreditEngine.layer().pipe(Layer.provide(Layer.succeed(Storage, storage)))),
          CreditEngine,
        )
        const modified = yield* engine.modify(ref, lock.key, change("GBP", -25))
        const journal = yield* withOutside((e) => e.journal(ref))
        expect(journal.entries.map((e) => e.id)).toContain(modified.entryId)
        expect(yield* gbp(ref)).toBe(975)
      }).pipe(Effect.scoped),
    30_000,
  )

  it.live("interrupted while it waits for a pool connection: the connection is given back when it comes", () =>
    Effect.gen(function* () {
      const { pool } = yield* recordedPool(1)
      yield* PostgresStorage.fromPool(pool)
      const held = yield* Effect.promise(() => pool.connect())
      const waiting = yield* Effect.fork(PostgresTransaction.run(pool, () => Effect.void))
      yield* Effect.sleep("100 millis")
      // The interrupt is delivered once the connection is obtained (acquiring cannot be cut short).
      const interrupting = yield* Effect.fork(Fiber.interrupt(waiting))
      held.release()
      yield* Fiber.join(interrupting)
      const served = yield* Effect.promise(() =>
        Promise.race([
          pool.query<{ one: number }>("SELECT 1 AS one").then((r) => r.rows[0]?.one),
          new Promise<string>((resolve) =>
            setTimeout(() => resolve("the pool's connection was never given back"), 3_000),
          ),
        ]),
      )
      expect(served).toBe(1)
      expect(pool.totalCount).toBe(1)
    }).pipe(Effect.scoped),
  )

  it.live(
    "a forked engine call that outlives the body sends nothing after COMMIT: StorageUnavailable, not applied",
    () =>
      Effect.gen(function* () {
        const { ref, lock } = yield* funded
        const { pool, sent } = yield* recordedPool(1)
        yield* PostgresStorage.fromPool(pool)
        const committed = yield* PostgresTransaction.run(pool, ({ credit }) =>
          Effect.forkDaemon(
            Effect.zipRight(Effect.sleep("200 millis"), credit.modify(ref, lock.key, change("GBP", -7))),
          ),
        )
        const late = yield* Fiber.join(committed.value).pipe(Effect.either)
        expect(Either.isLeft(late) && late.left._tag).toBe("StorageUnavailable")
        const afterCommit = sent.slice(sent.lastIndexOf("COMMIT") + 1)
        expect(afterCommit.filter((text) => text.includes("creditlock"))).toEqual([])
        expect(yield* gbp(ref)).toBe(1_000)
      }).pipe(Effect.scoped),
  )

  it("runPromise: a body that resolves with a call still running is rolled back, and that call applies nothing", async () => {
    const { ref, lock } = await Effect.runPromise(funded)
    const pool = new Pool({ connectionString: db.url, max: 1 })
    pool.on("error", () => undefined)
    try {
      let orphan: Promise<unknown> | undefined
      const answer = await PostgresTransaction.runPromise(pool, async ({ credit }) => {
        orphan = credit.modify(ref, Redacted.value(lock.key), change("GBP", -3))
        return "returned early"
      }).then(
        (value) => ({ resolved: value }),
        (error: unknown) => ({ rejected: error }),
      )
      expect("rejected" in answer && answer.rejected instanceof CreditError && answer.rejected.code).toBe(
        "STORAGE_UNAVAILABLE",
      )
      await orphan?.catch(() => undefined)
      expect(await Effect.runPromise(gbp(ref))).toBe(1_000)
    } finally {
      await pool.end()
    }
  })

  it.live("a statement timeout of 30 days bounds COMMIT by 30 days, not by a timer that overflowed", () =>
    Effect.gen(function* () {
      const { ref, lock } = yield* funded
      const { pool } = yield* recordedPool(1)
      const committed = yield* PostgresTransaction.run(
        pool,
        ({ client, credit }) =>
          Effect.gen(function* () {
            const modified = yield* credit.modify(ref, lock.key, change("GBP", -11))
            // The body's own statement, still running: COMMIT waits behind it.
            client.query("SELECT pg_sleep(0.2)").catch(() => undefined)
            return modified.entryId
          }),
        { statementTimeout: Duration.days(30) },
      )
      expect(typeof committed.value).toBe("string")
      expect(yield* gbp(ref)).toBe(989)
    }).pipe(Effect.scoped),
  )
})

describe("postgres: the caller's pool", () => {
  it.live("a ping interrupted while the pool is busy is never sent", () =>
    Effect.gen(function* () {
      const { pool, sent } = yield* recordedPool(1)
      const storage = yield* PostgresStorage.fromPool(pool)
      const held = yield* Effect.promise(() => pool.connect())
      const ping = yield* Effect.fork(storage.ping)
      yield* Effect.sleep("100 millis")
      yield* Fiber.interrupt(ping)
      sent.length = 0
      held.release()
      yield* Effect.sleep("300 millis")
      expect(sent).toEqual([])
    }).pipe(Effect.scoped),
  )

  it.live(
    "a connection given back inside a transaction: a commit on it answers StorageUnavailable, not a Committed that vanishes",
    () =>
      Effect.gen(function* () {
        const { ref } = yield* funded
        const { pool } = yield* recordedPool(1)
        const storage = yield* PostgresStorage.fromPool(pool)
        const stored = yield* storage
          .load(ref)
          .pipe(Effect.flatMap(Option.match({ onNone: () => Effect.dieMessage("not stored"), onSome: Effect.succeed })))
        const leaked = yield* Effect.promise(() => pool.connect())
        yield* Effect.promise(() => leaked.query("BEGIN"))
        leaked.release()
        const request = credit(ref, stored, 5)
        const first = yield* Effect.either(storage.commit(request))
        expect(Either.isLeft(first) && first.left._tag).toBe("StorageUnavailable")
        expect(yield* gbp(ref)).toBe(1_000)
        // Not applied, so the same commit may be sent again: it applies, and others see it.
        const second = yield* storage.commit(request)
        expect(second._tag).toBe("Committed")
        expect(yield* gbp(ref)).toBe(1_005)
      }).pipe(Effect.scoped),
  )
})
