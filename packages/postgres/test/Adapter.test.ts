/**
 * The adapter's own promises beyond the conformance suite: migrations (versioned, safe when
 * several storages start at once on an empty database, a newer schema refused with a clear error
 * and left untouched), options (validated, the connection string redacted), the caller's pool
 * (used, migrated, never ended), and the schema that one commit is: one statement.
 */
import { randomUUID } from "node:crypto"
import { CreditEngine } from "@creditlock/core"
import { holderKey, Storage } from "@creditlock/core/storage"
import { change, contract } from "@creditlock/test-suite"
import { type Database, freshDatabase, psql } from "@creditlock/test-suite/postgres-server"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Config, ConfigProvider, Context, Effect, Either, Exit, Fiber, Layer, Redacted } from "effect"
import { Client, Pool } from "pg"
import { PostgresStorage } from "../src/index.js"

// Fails the whole file, saying how to install and start PostgreSQL, when the server is not there.
const db: Database = await freshDatabase()
afterAll(() => db.drop())

const sql = (text: string) => Effect.promise(() => psql(db.port, text, db.name))

/** A fresh database whose default isolation is REPEATABLE READ, dropped with the scope. */
const repeatableReadDatabase = Effect.acquireRelease(
  Effect.promise(async () => {
    const database = await freshDatabase()
    await psql(database.port, `ALTER DATABASE ${database.name} SET default_transaction_isolation = 'repeatable read'`)
    return database
  }),
  (d) => Effect.promise(() => d.drop()),
)

const schemaName = () => `s_${randomUUID().replaceAll("-", "").slice(0, 20)}`

const failure = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.either(effect), (result) => {
    if (Either.isRight(result)) throw new Error("expected a failure, but it succeeded")
    return result.left
  })

describe("postgres: migrations", () => {
  it.live("8 storages starting at once on an empty schema apply each migration exactly once", () =>
    Effect.gen(function* () {
      const schema = schemaName()
      yield* Effect.forEach(
        Array.from({ length: 8 }, () =>
          Effect.scoped(PostgresStorage.make({ connectionString: db.url, schema, poolSize: 1 })),
        ),
        (make) => make,
        { concurrency: "unbounded" },
      )
      expect(yield* sql(`SELECT version FROM ${schema}.schema_version ORDER BY version`)).toBe(
        `${PostgresStorage.schemaVersion}\n`,
      )
      expect(
        yield* sql(
          `SELECT count(*) FROM pg_proc WHERE proname = 'commit_holder' AND pronamespace = '${schema}'::regnamespace`,
        ),
      ).toBe("1\n")
    }),
  )

  it.live(
    "on a database whose default isolation is REPEATABLE READ, 6 storages starting at once still migrate exactly once",
    () =>
      Effect.gen(function* () {
        const repeatable = yield* repeatableReadDatabase
        const schema = schemaName()
        const results = yield* Effect.forEach(
          Array.from({ length: 6 }, () =>
            Effect.either(
              Effect.scoped(PostgresStorage.make({ connectionString: repeatable.url, schema, poolSize: 1 })),
            ),
          ),
          (make) => make,
          { concurrency: "unbounded" },
        )
        expect(results.filter(Either.isLeft).map((r) => r.left.detail)).toEqual([])
        expect(
          yield* Effect.promise(() =>
            psql(
              repeatable.port,
              `SELECT string_agg(version::text, ',') FROM ${schema}.schema_version`,
              repeatable.name,
            ),
          ),
        ).toBe(`${PostgresStorage.schemaVersion}\n`)
      }).pipe(Effect.scoped),
  )

  it.live("a schema written by a newer version is refused with both versions named, and left untouched", () =>
    Effect.gen(function* () {
      const schema = schemaName()
      yield* Effect.scoped(PostgresStorage.make({ connectionString: db.url, schema }))
      const newer = PostgresStorage.schemaVersion + 1
      yield* sql(`INSERT INTO ${schema}.schema_version (version) VALUES (${newer})`)
      const dump = `SELECT string_agg(version::text, ',' ORDER BY version) FROM ${schema}.schema_version`
      const before = yield* sql(dump)
      const error = yield* failure(Effect.scoped(PostgresStorage.make({ connectionString: db.url, schema })))
      expect(error._tag).toBe("StorageUnavailable")
      expect(error.detail).toContain(`schema version ${newer}`)
      expect(error.detail).toContain(`up to ${PostgresStorage.schemaVersion}`)
      expect(error.detail).toContain("Upgrade @creditlock/postgres")
      expect(yield* sql(dump)).toBe(before)
    }),
  )

  it.live("an up-to-date schema is only read: a role without CREATE rights can use it", () =>
    Effect.gen(function* () {
      const schema = schemaName()
      yield* Effect.scoped(PostgresStorage.make({ connectionString: db.url, schema }))
      const role = `r_${randomUUID().replaceAll("-", "").slice(0, 16)}`
      yield* sql(`CREATE ROLE ${role} LOGIN`)
      yield* sql(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`)
      yield* sql(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`)
      yield* sql(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${role}`)
      yield* sql(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${schema} TO ${role}`)
      const url = db.url.replace("postgres@", `${role}@`)
      const ref = contract()
      yield* Effect.gen(function* () {
        const engine = yield* CreditEngine
        yield* engine.openHolder(ref)
        const { lock } = yield* engine.lock(ref)
        yield* engine.modify(ref, lock.key, change("GBP", 3))
      }).pipe(
        Effect.provide(
          CreditEngine.layer().pipe(Layer.provide(PostgresStorage.layer({ connectionString: url, schema }))),
        ),
      )
      yield* sql(`DROP OWNED BY ${role}`)
      yield* sql(`DROP ROLE ${role}`)
    }),
  )
})

describe("postgres: options", () => {
  it.live("an invalid schema name, timeout or pool size fails the layer naming the option; nothing is created", () =>
    Effect.gen(function* () {
      for (const schema of ["Upper", "has space", 'x"; DROP TABLE y; --', "", "1abc", "a".repeat(64), "pg_credit"]) {
        const error = yield* failure(Effect.scoped(PostgresStorage.make({ connectionString: db.url, schema })))
        expect(error.detail).toContain("schema must be")
      }
      const timeout = yield* failure(
        Effect.scoped(PostgresStorage.make({ connectionString: db.url, statementTimeout: "forever" as never })),
      )
      expect(timeout.detail).toContain("statementTimeout")
      const pool = yield* failure(Effect.scoped(PostgresStorage.make({ connectionString: db.url, poolSize: 0 })))
      expect(pool.detail).toContain("poolSize")
      const prepared = yield* failure(
        Effect.scoped(PostgresStorage.make({ connectionString: db.url, preparedStatements: "yes" as never })),
      )
      expect(prepared.detail).toContain("preparedStatements")
      expect(yield* sql(`SELECT count(*) FROM pg_namespace WHERE nspname IN ('Upper', '1abc', 'pg_credit')`)).toBe(
        "0\n",
      )
    }),
  )

  it.live(
    "an unreachable server fails the layer with StorageUnavailable within connectTimeout, password not shown",
    () =>
      Effect.gen(function* () {
        const started = Date.now()
        const error = yield* failure(
          Effect.scoped(
            PostgresStorage.make({
              connectionString: Redacted.make("postgres://someone:s3cret-pw@127.0.0.1:1/nothing"),
              connectTimeout: "1 second",
            }),
          ),
        )
        expect(error._tag).toBe("StorageUnavailable")
        expect(Date.now() - started).toBeLessThan(5_000)
        expect(error.detail).not.toContain("s3cret-pw")
        expect(JSON.stringify(error)).not.toContain("s3cret-pw")
      }),
  )

  it.live("layerConfig reads the options from configuration", () =>
    Effect.gen(function* () {
      const layer = PostgresStorage.layerConfig({
        connectionString: Config.redacted("DATABASE_URL"),
        schema: Config.string("CREDIT_SCHEMA"),
      })
      const schema = schemaName()
      yield* Effect.flatMap(Storage, (s) => s.ping).pipe(
        Effect.provide(layer),
        Effect.withConfigProvider(
          ConfigProvider.fromMap(
            new Map([
              ["DATABASE_URL", db.url],
              ["CREDIT_SCHEMA", schema],
            ]),
          ),
        ),
      )
      expect(yield* sql(`SELECT count(*) FROM ${schema}.schema_version`)).toBe("1\n")
    }),
  )
})

describe("postgres: the caller's pool", () => {
  it.live("fromPool migrates and serves over the caller's pool, and leaves it open", () =>
    Effect.gen(function* () {
      const pool = new Pool({ connectionString: db.url, max: 2 })
      pool.on("error", () => undefined)
      const schema = schemaName()
      try {
        const ref = contract()
        yield* Effect.gen(function* () {
          const engine = yield* CreditEngine
          yield* engine.openHolder(ref)
          const { lock } = yield* engine.lock(ref)
          yield* engine.modify(ref, lock.key, change("GBP", 250))
        }).pipe(
          Effect.provide(CreditEngine.layer().pipe(Layer.provide(PostgresStorage.layerFromPool(pool, { schema })))),
        )
        // The layer is released; the pool is still the caller's and still works.
        expect(pool.ended).toBe(false)
        const rows = yield* Effect.promise(() =>
          pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${schema}.journal`),
        )
        expect(rows.rows[0]?.n).toBe("2")
      } finally {
        yield* Effect.promise(() => pool.end())
      }
    }),
  )

  it.live("the library's own pool is ended when its scope closes", () =>
    Effect.gen(function* () {
      const application = `creditlock-${randomUUID()}`
      const count = `SELECT count(*) FROM pg_stat_activity WHERE application_name = '${application}'`
      const exit = yield* Effect.exit(
        Effect.scoped(
          Effect.gen(function* () {
            const storage = yield* PostgresStorage.make({ connectionString: db.url, applicationName: application })
            yield* storage.ping
            expect(Number(yield* sql(count))).toBeGreaterThan(0)
          }),
        ),
      )
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(yield* sql(count)).toBe("0\n")
    }),
  )
})

describe("postgres: one commit is one statement", () => {
  it.live("a modification is one statement, the call of commit_holder (the engine plans on its cached snapshot)", () =>
    Effect.gen(function* () {
      const pool = new Pool({ connectionString: db.url, max: 2 })
      pool.on("error", () => undefined)
      const sent: Array<string> = []
      pool.on("connect", (client) => {
        const query = client.query.bind(client) as (...args: ReadonlyArray<unknown>) => unknown
        ;(client as unknown as { query: (...args: ReadonlyArray<unknown>) => unknown }).query = (...args) => {
          const first = args[0] as string | { readonly text?: string }
          sent.push(typeof first === "string" ? first : (first.text ?? ""))
          return query(...args)
        }
      })
      const schema = schemaName()
      const ref = contract()
      try {
        yield* Effect.gen(function* () {
          const engine = yield* CreditEngine
          yield* engine.openHolder(ref)
          const { lock } = yield* engine.lock(ref)
          sent.length = 0
          yield* engine.modify(ref, lock.key, change("GBP", 9))
        }).pipe(
          Effect.provide(CreditEngine.layer().pipe(Layer.provide(PostgresStorage.layerFromPool(pool, { schema })))),
        )
        expect(sent).toEqual([expect.stringContaining(`"${schema}".commit_holder(`)])
      } finally {
        yield* Effect.promise(() => pool.end())
      }
    }),
  )
})

describe("postgres: prepared statements", () => {
  /** A pool of the caller's with one connection (so every statement runs on it), ended after use. */
  const onePool = Effect.acquireRelease(
    Effect.sync(() => {
      const pool = new Pool({ connectionString: db.url, max: 1 })
      pool.on("error", () => undefined)
      return pool
    }),
    (pool) => Effect.promise(() => pool.end()),
  )

  /** The names of the prepared statements of the pool's one connection. */
  const preparedOn = (pool: Pool) =>
    Effect.promise(() =>
      pool
        .query<{ name: string }>("SELECT name FROM pg_prepared_statements ORDER BY name")
        .then((r) => r.rows.map((row) => row.name)),
    )

  /** `body` on an engine over `pool`, in a fresh schema, with a holder opened for it. */
  const onHolder = <A, E>(
    pool: Pool,
    options: { readonly preparedStatements?: boolean },
    body: (ref: ReturnType<typeof contract>, schema: string) => Effect.Effect<A, E, CreditEngine>,
  ) => {
    const schema = schemaName()
    const ref = contract()
    return Effect.flatMap(CreditEngine, (engine) => engine.openHolder(ref)).pipe(
      Effect.zipRight(body(ref, schema)),
      Effect.provide(
        CreditEngine.layer().pipe(Layer.provide(PostgresStorage.layerFromPool(pool, { schema, ...options }))),
      ),
    )
  }

  const cycle = (ref: ReturnType<typeof contract>, delta: number) =>
    Effect.gen(function* () {
      const engine = yield* CreditEngine
      const { lock } = yield* engine.lock(ref)
      yield* engine.modify(ref, lock.key, change("GBP", delta))
      yield* engine.unlock(ref, lock.key)
    })

  it.live(
    "the load and the commit are prepared once per connection by default, and never with preparedStatements: false",
    () =>
      Effect.gen(function* () {
        for (const options of [{}, { preparedStatements: false }]) {
          const pool = yield* onePool
          const names = yield* onHolder(pool, options, (ref) =>
            Effect.gen(function* () {
              yield* cycle(ref, 5)
              yield* cycle(ref, 6)
              // A fresh read of the holder (not the engine's cached snapshot) loads it.
              yield* Effect.flatMap(CreditEngine, (engine) => engine.verify(ref))
              return yield* preparedOn(pool)
            }),
          )
          if (options.preparedStatements === false) expect(names).toEqual([])
          else {
            expect(names).toHaveLength(2)
            for (const name of names) expect(name).toMatch(/^creditlock_[0-9a-f]{24}$/)
          }
        }
      }).pipe(Effect.scoped),
  )

  it.live(
    "a prepared statement dropped under the adapter (DEALLOCATE ALL) fails one call as not applied, and the next prepares afresh",
    () =>
      Effect.gen(function* () {
        const pool = yield* onePool
        const schema = yield* onHolder(pool, {}, (ref, schema) =>
          Effect.gen(function* () {
            const engine = yield* CreditEngine
            yield* cycle(ref, 5)
            expect(yield* preparedOn(pool)).toHaveLength(2)
            yield* Effect.promise(() => pool.query("DEALLOCATE ALL"))
            // The lock's commit names a statement the server no longer has: refused, not applied.
            const refused = yield* Effect.either(engine.lock(ref))
            expect(Either.isLeft(refused) && refused.left._tag).toBe("StorageUnavailable")
            // That connection was destroyed; the next call prepares on a new one and succeeds.
            yield* cycle(ref, 7)
            yield* cycle(ref, 8)
            expect((yield* engine.getCredit(ref)).current.credit[0]?.amount.value).toBe(20)
            expect((yield* engine.verify(ref)).ok).toBe(true)
            return schema
          }),
        )
        const journal = yield* Effect.promise(() =>
          pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${schema}.journal`),
        )
        // Opened and three modifications: the refused lock wrote nothing.
        expect(journal.rows[0]?.n).toBe("4")
      }).pipe(Effect.scoped),
  )
})

describe("postgres: a database whose default isolation is REPEATABLE READ", () => {
  it.live(
    "two engines racing for one holder's lock: one is granted, the other refused — a serialization failure is a conflict, never a 503",
    () =>
      Effect.gen(function* () {
        const repeatable = yield* repeatableReadDatabase
        const schema = schemaName()
        // Two engines (as two processes would be), each over a pool of its own on one schema.
        const engineOn = () =>
          Effect.map(
            Layer.build(
              CreditEngine.layer().pipe(
                Layer.provide(PostgresStorage.layer({ connectionString: repeatable.url, schema })),
              ),
            ),
            (context) => Context.get(context, CreditEngine),
          )
        const a = yield* engineOn()
        const b = yield* engineOn()
        // A third session holds the holder's row, so that both commits are sent and wait on it;
        // once it lets go, one commits and the other, whose snapshot predates that commit, gets
        // a serialization failure (at READ COMMITTED it would re-check the row and not match).
        const blocker = new Client({ connectionString: repeatable.url })
        yield* Effect.acquireRelease(
          Effect.promise(() => blocker.connect()),
          () => Effect.promise(() => blocker.end()),
        )
        const waiting = () =>
          Effect.promise(() =>
            blocker
              .query<{ n: string }>(
                "SELECT count(*)::text AS n FROM pg_locks AS l JOIN pg_stat_activity AS s ON s.pid = l.pid WHERE NOT l.granted AND s.datname = current_database()",
              )
              .then((r) => Number(r.rows[0]?.n ?? 0)),
          )
        for (let round = 0; round < 3; round++) {
          const ref = contract()
          yield* a.openHolder(ref)
          // Both engines hold a snapshot of the free holder, so both plan a grant.
          yield* b.getCredit(ref)
          yield* Effect.promise(() => blocker.query("BEGIN"))
          yield* Effect.promise(() =>
            blocker.query(`SELECT 1 FROM ${schema}.holders WHERE holder_key = $1 FOR UPDATE`, [holderKey(ref)]),
          )
          const race = yield* Effect.fork(
            Effect.all([Effect.either(a.lock(ref)), Effect.either(b.lock(ref))], { concurrency: 2 }),
          )
          const deadline = Date.now() + 20_000
          while ((yield* waiting()) < 2 && Date.now() < deadline) yield* Effect.sleep("20 millis")
          expect(yield* waiting(), "both commits wait on the row").toBeGreaterThanOrEqual(2)
          yield* Effect.promise(() => blocker.query("COMMIT"))
          const [first, second] = yield* Fiber.join(race)
          const outcomes = [first, second].map((r) => (Either.isRight(r) ? "granted" : r.left._tag))
          expect(outcomes.sort()).toEqual(["CreditLocked", "granted"])
        }
      }).pipe(Effect.scoped),
    120_000,
  )
})
