/**
 * Faults on a real server: a connection terminated (`pg_terminate_backend`) in the middle of a
 * commit — before it applied, and after it committed locally — settles as applied or not, never
 * the wrong way; a server that is stopped answers StorageUnavailable (503) within the timeouts and
 * the same storage serves again once it is started, without being rebuilt.
 */
import { randomUUID } from "node:crypto"
import { CreditEngine } from "@creditlock/core"
import { type CommitRequest, type HolderRef, holderKey, Storage, type StoredHolder } from "@creditlock/core/storage"
import { change, contract, engineWith } from "@creditlock/test-suite"
import { freshDatabase, startPostgres } from "@creditlock/test-suite/postgres-server"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Fiber, Layer, Option } from "effect"
import { Client } from "pg"
import { PostgresStorage } from "../src/index.js"

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

/** A plain client for inspecting and poking the server, closed when the test ends. */
const admin = (url: string) =>
  Effect.acquireRelease(
    promise(async () => {
      const client = new Client({ connectionString: url })
      client.on("error", () => undefined)
      await client.connect()
      return client
    }),
    (client) => promise(() => client.end().catch(() => undefined)),
  )

/** A database of the machine's server, dropped when the test ends. */
const database = Effect.acquireRelease(
  promise(() => freshDatabase()),
  (db) => promise(() => db.drop()),
)

/** A server of the test's own, disposed when the test ends. */
const ownServer = Effect.acquireRelease(
  promise(() => startPostgres()),
  (server) => promise(() => server.dispose()),
)

/** Polls `f` every 20 ms until it returns a value, for at most `millis`. */
const eventually = <A>(what: string, millis: number, f: () => Promise<A | undefined>) =>
  promise(async () => {
    const deadline = Date.now() + millis
    while (Date.now() < deadline) {
      const value = await f()
      if (value !== undefined) return value
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    throw new Error(`${what} did not happen within ${millis} ms`)
  })

/** The pid of a backend of `application` that is running a commit and waiting on `waitEvent`. */
const waitingCommit = (client: Client, application: string, waitEvent: string) =>
  eventually(`a commit waiting on ${waitEvent}`, 10_000, async () => {
    const result = await client.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
       WHERE application_name = $1 AND state = 'active' AND wait_event = $2 AND query LIKE '%commit_holder%'`,
      [application, waitEvent],
    )
    return result.rows[0]?.pid
  })

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
        reason: "fault test",
        changes: [{ currencyCode: "GBP", delta: value, before, after: before + value }],
      },
    ],
    index: [{ kind: "order", value: id }],
    claims: [],
  }
}

const loaded = (ref: HolderRef) =>
  Effect.flatMap(
    Effect.flatMap(Storage, (s) => s.load(ref)),
    (stored) => (Option.isSome(stored) ? Effect.succeed(stored.value) : Effect.dieMessage("the holder is not stored")),
  )

describe("postgres: a connection terminated mid-commit", () => {
  it.live("before the commit applied (waiting for a row lock): OutcomeUnknown, and nothing was written", () =>
    Effect.gen(function* () {
      const db = yield* database
      const application = `creditlock-${randomUUID()}`
      const context = yield* Layer.build(
        engineWith(PostgresStorage.layer({ connectionString: db.url, applicationName: application, poolSize: 2 })),
      )
      const store = yield* Effect.provide(Storage, context)
      const ref = contract()
      yield* Effect.provide(
        Effect.flatMap(CreditEngine, (e) => e.openHolder(ref)),
        context,
      )
      const before = yield* Effect.provide(loaded(ref), context)

      const blocker = yield* admin(db.url)
      const killer = yield* admin(db.url)
      yield* promise(() => blocker.query("BEGIN"))
      yield* promise(() =>
        blocker.query("SELECT 1 FROM creditlock.holders WHERE holder_key = $1 FOR UPDATE", [holderKey(ref)]),
      )
      const commit = yield* Effect.fork(Effect.either(store.commit(credit(ref, before, 100))))
      const pid = yield* waitingCommit(killer, application, "transactionid")
      yield* promise(() => killer.query("SELECT pg_terminate_backend($1)", [pid]))
      const answer = yield* Fiber.join(commit)
      yield* promise(() => blocker.query("ROLLBACK"))

      expect(Either.isLeft(answer) && answer.left._tag).toBe("OutcomeUnknown")
      // It was not applied, which is what the witness would show the engine.
      expect(yield* Effect.provide(loaded(ref), context)).toEqual(before)
      // The storage serves on (the pool dropped the terminated connection).
      expect((yield* store.commit(credit(ref, before, 5)))._tag).toBe("Committed")
    }).pipe(Effect.scoped),
  )

  it.live("through the engine: a modify whose commit was terminated settles, applied exactly once", () =>
    Effect.gen(function* () {
      const db = yield* database
      const application = `creditlock-${randomUUID()}`
      const layer = engineWith(
        PostgresStorage.layer({ connectionString: db.url, applicationName: application, poolSize: 2 }),
        { settleTimeout: Duration.seconds(5) },
      )
      const context = yield* Layer.build(layer)
      const ref = contract()
      const reference = `ref-${randomUUID()}`
      const { lock } = yield* Effect.provide(
        Effect.flatMap(CreditEngine, (e) => Effect.zipRight(e.openHolder(ref), e.lock(ref))),
        context,
      )
      const blocker = yield* admin(db.url)
      const killer = yield* admin(db.url)
      yield* promise(() => blocker.query("BEGIN"))
      yield* promise(() =>
        blocker.query("SELECT 1 FROM creditlock.holders WHERE holder_key = $1 FOR UPDATE", [holderKey(ref)]),
      )
      const modify = yield* Effect.fork(
        Effect.provide(
          Effect.flatMap(CreditEngine, (e) => e.modify(ref, lock.key, change("GBP", 700, "terminated", reference))),
          context,
        ),
      )
      const pid = yield* waitingCommit(killer, application, "transactionid")
      yield* promise(() => killer.query("SELECT pg_terminate_backend($1)", [pid]))
      yield* promise(() => blocker.query("ROLLBACK"))
      const result = yield* Fiber.join(modify)

      expect(result.current.credit.map((c) => c.amount.value)).toEqual([700])
      const journal = yield* Effect.provide(
        Effect.flatMap(Storage, (s) => s.journal(ref, { afterSeq: 0, limit: 100 })),
        context,
      )
      expect(journal.filter((e) => e.reference === reference).map((e) => e.id)).toEqual([result.entryId])
      expect(
        (yield* Effect.provide(
          Effect.flatMap(CreditEngine, (e) => e.verify(ref)),
          context,
        )).ok,
      ).toBe(true)
    }).pipe(Effect.scoped),
  )

  it.live(
    "after it committed locally (waiting for a synchronous standby): OutcomeUnknown, never StorageUnavailable, and the engine settles it as applied",
    () =>
      Effect.gen(function* () {
        const server = yield* ownServer
        const application = `creditlock-${randomUUID()}`
        const context = yield* Layer.build(
          engineWith(
            PostgresStorage.layer({ connectionString: server.url, applicationName: application, poolSize: 2 }),
            { settleTimeout: Duration.seconds(5) },
          ),
        )
        const store = yield* Effect.provide(Storage, context)
        const ref = contract()
        yield* Effect.provide(
          Effect.flatMap(CreditEngine, (e) => e.openHolder(ref)),
          context,
        )
        const before = yield* Effect.provide(loaded(ref), context)
        const control = yield* admin(server.url)
        // No standby will ever confirm: a commit is written locally, then waits for it.
        const waitForStandby = (on: boolean) =>
          promise(async () => {
            await control.query(`ALTER SYSTEM SET synchronous_standby_names = '${on ? "nobody" : ""}'`)
            await control.query("SELECT pg_reload_conf()")
            await new Promise((resolve) => setTimeout(resolve, 200))
          })

        yield* waitForStandby(true)
        const commit = yield* Effect.fork(Effect.either(store.commit(credit(ref, before, 100))))
        const pid = yield* waitingCommit(control, application, "SyncRep")
        yield* promise(() => control.query("SELECT pg_terminate_backend($1)", [pid]))
        const answer = yield* Fiber.join(commit)
        yield* waitForStandby(false)
        expect(Either.isLeft(answer) && answer.left._tag).toBe("OutcomeUnknown")
        // It was applied: reporting StorageUnavailable would have been wrong.
        const after = yield* Effect.provide(loaded(ref), context)
        expect(after.revision).toBe(before.revision + 1)

        // The same through the engine: the witness (the entry id) proves it applied.
        const { lock } = yield* Effect.provide(
          Effect.flatMap(CreditEngine, (e) => e.lock(ref)),
          context,
        )
        yield* waitForStandby(true)
        const reference = `ref-${randomUUID()}`
        const modify = yield* Effect.fork(
          Effect.provide(
            Effect.flatMap(CreditEngine, (e) => e.modify(ref, lock.key, change("GBP", 40, "synchronous", reference))),
            context,
          ),
        )
        const second = yield* waitingCommit(control, application, "SyncRep")
        yield* promise(() => control.query("SELECT pg_terminate_backend($1)", [second]))
        yield* waitForStandby(false)
        const result = yield* Fiber.join(modify)
        expect(result.current.credit.map((c) => c.amount.value)).toEqual([140])
        const journal = yield* Effect.provide(
          Effect.flatMap(Storage, (s) => s.journal(ref, { afterSeq: 0, limit: 100 })),
          context,
        )
        expect(journal.filter((e) => e.reference === reference).map((e) => e.id)).toEqual([result.entryId])
      }).pipe(Effect.scoped),
    60_000,
  )
})

describe("postgres: the server stopped and started again", () => {
  it.live(
    "answers StorageUnavailable (503) within the timeouts while it is down, and serves again without a restart",
    () =>
      Effect.gen(function* () {
        const server = yield* ownServer
        const context = yield* Layer.build(
          engineWith(
            PostgresStorage.layer({
              connectionString: server.url,
              statementTimeout: Duration.seconds(1),
              connectTimeout: Duration.seconds(1),
              poolSize: 2,
            }),
            { settleTimeout: Duration.seconds(1) },
          ),
        )
        const run = <A, E>(f: (engine: CreditEngine["Type"]) => Effect.Effect<A, E>) =>
          Effect.provide(Effect.flatMap(CreditEngine, f), context)
        const ref = contract()
        yield* run((e) => e.openHolder(ref))
        const { lock } = yield* run((e) => e.lock(ref))
        yield* run((e) => e.modify(ref, lock.key, change("GBP", 10)))

        yield* promise(() => server.stop())
        for (const [name, call] of [
          ["getCredit", run((e) => e.getCredit(ref))],
          ["modify", run((e) => e.modify(ref, lock.key, change("GBP", 20)))],
          ["lock", run((e) => e.lock(contract()))],
        ] as const) {
          const started = Date.now()
          const answer = yield* Effect.either(
            call as Effect.Effect<unknown, { readonly _tag: string; status?: number }>,
          )
          const elapsed = Date.now() - started
          expect(Either.isLeft(answer), `${name} while the server is down`).toBe(true)
          if (Either.isLeft(answer)) {
            expect(answer.left._tag, name).toBe("StorageUnavailable")
            expect(answer.left.status, name).toBe(503)
          }
          // Never a hang: bounded by the connect timeout, the retries' back-off and the settle window.
          expect(elapsed, `${name} took ${elapsed} ms`).toBeLessThan(10_000)
        }

        yield* promise(() => server.start())
        const view = yield* run((e) => e.getCredit(ref))
        expect(view.current.credit.map((c) => c.amount.value)).toEqual([10])
        yield* run((e) => e.modify(ref, lock.key, change("GBP", 5)))
        expect((yield* run((e) => e.verify(ref))).ok).toBe(true)
        expect((yield* run((e) => e.getCredit(ref))).current.credit.map((c) => c.amount.value)).toEqual([15])
      }).pipe(Effect.scoped),
    60_000,
  )
})
