/**
 * The adapter's own promises beyond the conformance suite: migrations (versioned, safe when
 * several storages start at once on an empty database, a newer schema refused with a clear error
 * and left untouched), options (validated, the connection string redacted), the caller's pool
 * (used, migrated, never ended), and the schema that one commit is: one statement.
 */
import { randomUUID } from "node:crypto"
import { CreditEngine } from "@creditlock/core"
import { Storage } from "@creditlock/core/storage"
import { change, contract } from "@creditlock/test-suite"
import { type Database, freshDatabase, psql } from "@creditlock/test-suite/postgres-server"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Config, ConfigProvider, Effect, Either, Exit, Layer, Redacted } from "effect"
import { Pool } from "pg"
import { PostgresStorage } from "../src/index.js"

// Fails the whole file, saying how to install and start PostgreSQL, when the server is not there.
const db: Database = await freshDatabase()
afterAll(() => db.drop())

const sql = (text: string) => Effect.promise(() => psql(db.port, text, db.name))

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
        const repeatable = yield* Effect.acquireRelease(
          Effect.promise(() => freshDatabase()),
          (d) => Effect.promise(() => d.drop()),
        )
        yield* Effect.promise(() =>
          psql(
            repeatable.port,
            `ALTER DATABASE ${repeatable.name} SET default_transaction_isolation = 'repeatable read'`,
          ),
        )
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
  it.live("a modification sends exactly one write statement, the call of commit_holder; the rest are reads", () =>
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
        const writes = sent.filter((text) => !/^\s*SELECT\b/i.test(text) || text.includes("commit_holder"))
        expect(writes).toEqual([expect.stringContaining(`"${schema}".commit_holder(`)])
        expect(sent.length).toBeGreaterThan(1)
      } finally {
        yield* Effect.promise(() => pool.end())
      }
    }),
  )
})
