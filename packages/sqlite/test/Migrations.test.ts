import { createHash } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CreditEngine, type HolderRef, Storage, StorageUnavailable } from "@creditlock/core"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect, Layer, Option } from "effect"
import { afterAll } from "vitest"
import { SqliteStorage } from "../src/index.js"

const dir = mkdtempSync(join(tmpdir(), "creditlock-sqlite-migrations-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let files = 0
const freshFile = () => join(dir, `db-${++files}.sqlite`)

const holder: HolderRef = { customerId: "cust-migrations", holderType: "customers", holderId: "cust-migrations" }

/** Reads the raw database with a connection of its own. */
const raw = <A>(filename: string, f: (db: Database.Database) => A): A => {
  const db = new Database(filename)
  try {
    return f(db)
  } finally {
    db.close()
  }
}

const tables = (db: Database.Database) =>
  db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all()

const versions = (db: Database.Database) =>
  db.prepare("SELECT version FROM creditlock_schema_version ORDER BY version").pluck().all()

const sha256 = (filename: string) => createHash("sha256").update(readFileSync(filename)).digest("hex")

/** Opens the file with the adapter, opens the holder, and closes it again. */
const openWithAdapter = (filename: string) =>
  Effect.flatMap(CreditEngine, (engine) => engine.openHolder(holder)).pipe(
    Effect.provide(CreditEngine.layer().pipe(Layer.provide(SqliteStorage.layer({ filename })))),
  )

const expectRefused = (filename: string) =>
  Effect.gen(function* () {
    const error = yield* Effect.flip(openWithAdapter(filename))
    expect(error._tag).toBe("StorageUnavailable")
    expect(error).toBeInstanceOf(StorageUnavailable)
    return error.detail
  })

describe("sqlite: schema migrations", () => {
  it.effect("a new database is migrated to the latest version, once; opening it again changes nothing", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      expect(SqliteStorage.schemaVersion).toBe(1)
      yield* openWithAdapter(filename)
      const first = raw(filename, (db) => ({ tables: tables(db), versions: versions(db) }))
      expect(first.versions).toEqual([SqliteStorage.schemaVersion])
      expect(first.tables).toEqual([
        "creditlock_holders",
        "creditlock_index",
        "creditlock_journal",
        "creditlock_schema_version",
      ])
      yield* openWithAdapter(filename)
      yield* openWithAdapter(filename)
      expect(raw(filename, (db) => ({ tables: tables(db), versions: versions(db) }))).toEqual(first)
      expect(raw(filename, (db) => db.pragma("journal_mode", { simple: true }))).toBe("wal")
    }),
  )

  it.effect("the schema shares a caller's database without touching the caller's tables", () =>
    Effect.gen(function* () {
      const db = new Database(freshFile())
      db.exec("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER); INSERT INTO invoices VALUES (1, 42)")
      const storage = yield* SqliteStorage.fromDatabase(db)
      yield* Effect.flatMap(CreditEngine, (engine) => engine.openHolder(holder)).pipe(
        Effect.provide(CreditEngine.layer().pipe(Layer.provide(Layer.succeed(Storage, storage)))),
      )
      expect(db.prepare("SELECT * FROM invoices").all()).toEqual([{ id: 1, total: 42 }])
      expect(tables(db)).toContain("invoices")
      expect(versions(db)).toEqual([1])
      db.close()
    }),
  )

  it.effect("a database of a newer schema → an error naming both versions; the file is left untouched", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      yield* openWithAdapter(filename)
      raw(filename, (db) => db.prepare("INSERT INTO creditlock_schema_version VALUES (7, 0)").run())
      const before = sha256(filename)
      const detail = yield* expectRefused(filename)
      expect(detail).toContain("schema version 7")
      expect(detail).toContain(`up to ${SqliteStorage.schemaVersion}`)
      expect(sha256(filename)).toBe(before)
      expect(raw(filename, versions)).toEqual([1, 7])
    }),
  )

  it.effect("a newer schema in a rollback-journal database is not even switched to WAL", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      raw(filename, (db) =>
        db.exec("CREATE TABLE creditlock_schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"),
      )
      raw(filename, (db) => db.prepare("INSERT INTO creditlock_schema_version VALUES (2, 0)").run())
      const before = sha256(filename)
      const detail = yield* expectRefused(filename)
      expect(detail).toContain("schema version 2")
      expect(sha256(filename)).toBe(before)
      raw(filename, (db) => {
        expect(db.pragma("journal_mode", { simple: true })).toBe("delete")
        expect(tables(db)).toEqual(["creditlock_schema_version"])
      })
    }),
  )

  it.effect("a migration that fails is rolled back whole, and a later open can still succeed", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      // A table of the caller that collides with the schema's makes the migration fail half-way.
      raw(filename, (db) => db.exec("CREATE TABLE creditlock_index (anything TEXT)"))
      const detail = yield* expectRefused(filename)
      expect(detail).toContain("creditlock_index")
      expect(raw(filename, tables)).toEqual(["creditlock_index"])
      raw(filename, (db) => db.exec("DROP TABLE creditlock_index"))
      yield* openWithAdapter(filename)
      expect(raw(filename, versions)).toEqual([1])
      const stored = yield* Effect.flatMap(Storage, (s) => s.load(holder)).pipe(
        Effect.provide(SqliteStorage.layer({ filename })),
      )
      expect(Option.isSome(stored)).toBe(true)
    }),
  )
})
