import { createHash } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CreditEngine } from "@creditlock/core"
import {
  decodeDocument,
  encodeDocument,
  type HolderDocument,
  type HolderRef,
  holderKey,
  type JournalEntry,
  Storage,
  StorageUnavailable,
} from "@creditlock/core/storage"
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

/** The schema of version 1, as @creditlock/sqlite 0.1 wrote it (frozen here: migrations must read it). */
const schemaV1 = `
  CREATE TABLE creditlock_schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL);
  INSERT INTO creditlock_schema_version VALUES (1, 0);
  CREATE TABLE creditlock_holders (
    holder_key TEXT NOT NULL PRIMARY KEY,
    customer_id TEXT NOT NULL,
    holder_type TEXT NOT NULL,
    holder_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    document TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE creditlock_journal (
    holder_key TEXT NOT NULL REFERENCES creditlock_holders (holder_key),
    seq INTEGER NOT NULL,
    id TEXT NOT NULL UNIQUE,
    reference TEXT,
    entry TEXT NOT NULL,
    PRIMARY KEY (holder_key, seq)
  ) WITHOUT ROWID;
  CREATE INDEX creditlock_journal_reference
    ON creditlock_journal (holder_key, reference) WHERE reference IS NOT NULL;
  CREATE TABLE creditlock_index (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    holder_key TEXT NOT NULL REFERENCES creditlock_holders (holder_key),
    PRIMARY KEY (kind, value, holder_key)
  ) WITHOUT ROWID;
`

/** A v1 holder: its document (every v1 document names an alias, the holder id by default). */
const v1Document = (ref: HolderRef, balanceGroupId: string): HolderDocument => ({
  ref,
  balanceGroupId,
  openedAt: 1_700_000_000_000,
  balances: [{ currencyCode: "GBP", value: 25, updatedAt: 1_700_000_000_001 }],
  lock: null,
  journalSeq: 2,
})

/** Writes a holder as version 1 did: its row, two journal entries, and its index rows (alias included). */
const writeV1Holder = (db: Database.Database, document: HolderDocument): ReadonlyArray<JournalEntry> => {
  const { ref } = document
  const key = holderKey(ref)
  const entries: ReadonlyArray<JournalEntry> = [
    { id: `${key}#1`, seq: 1, at: document.openedAt, holder: ref, kind: "opened", changes: [] },
    {
      id: `${key}#2`,
      seq: 2,
      at: document.openedAt + 1,
      holder: ref,
      kind: "modification",
      reason: "seed",
      reference: "inv-1",
      changes: [{ currencyCode: "GBP", delta: 25, before: 0, after: 25 }],
    },
  ]
  db.prepare("INSERT INTO creditlock_holders VALUES (?, ?, ?, ?, 3, ?)").run(
    key,
    ref.customerId,
    ref.holderType,
    ref.holderId,
    encodeDocument(document),
  )
  const index = db.prepare("INSERT INTO creditlock_index VALUES (?, ?, ?)")
  for (const entry of entries) {
    db.prepare("INSERT INTO creditlock_journal VALUES (?, ?, ?, ?, ?)").run(
      key,
      entry.seq,
      entry.id,
      entry.reference ?? null,
      JSON.stringify(entry),
    )
    index.run("order", entry.id, key)
    if (entry.reference !== undefined) index.run("order", entry.reference, key)
  }
  index.run("customer", ref.customerId, key)
  if (ref.holderType === "contracts") index.run("subscription", ref.holderId, key)
  index.run("balanceGroup", document.balanceGroupId ?? "", key)
  return entries
}

describe("sqlite: schema migrations", () => {
  it.effect("a new database is migrated to the latest version, once; opening it again changes nothing", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      expect(SqliteStorage.schemaVersion).toBe(2)
      yield* openWithAdapter(filename)
      const first = raw(filename, (db) => ({ tables: tables(db), versions: versions(db) }))
      expect(first.versions).toEqual([1, 2])
      expect(first.tables).toEqual([
        "creditlock_aliases",
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
      expect(versions(db)).toEqual([1, 2])
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
      expect(raw(filename, versions)).toEqual([1, 2, 7])
    }),
  )

  it.effect("a newer schema in a rollback-journal database is not even switched to WAL", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      raw(filename, (db) =>
        db.exec("CREATE TABLE creditlock_schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"),
      )
      const newer = SqliteStorage.schemaVersion + 1
      raw(filename, (db) => db.prepare("INSERT INTO creditlock_schema_version VALUES (?, 0)").run(newer))
      const before = sha256(filename)
      const detail = yield* expectRefused(filename)
      expect(detail).toContain(`schema version ${newer}`)
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
      expect(raw(filename, versions)).toEqual([1, 2])
      const stored = yield* Effect.flatMap(Storage, (s) => s.load(holder)).pipe(
        Effect.provide(SqliteStorage.layer({ filename })),
      )
      expect(Option.isSome(stored)).toBe(true)
    }),
  )

  it.effect("v1 → v2: an alias one holder had becomes its claim; a shared alias becomes nobody's", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      // Two customers whose contracts have the same id shared the implicit alias "sub-777" in v1.
      const first: HolderRef = { customerId: "cust-1", holderType: "contracts", holderId: "sub-777" }
      const second: HolderRef = { customerId: "cust-2", holderType: "contracts", holderId: "sub-777" }
      const alone: HolderRef = { customerId: "cust-3", holderType: "customers", holderId: "cust-3" }
      const implicit: HolderRef = { customerId: "cust-3", holderType: "contracts", holderId: "sub-3" }
      const documents = [
        v1Document(first, "sub-777"),
        v1Document(second, "sub-777"),
        v1Document(alone, "0.0.0.1+-balance_group+82896"),
        v1Document(implicit, "sub-3"),
      ]
      const journals = raw(filename, (db) => {
        db.exec(schemaV1)
        return documents.map((document) => writeV1Holder(db, document))
      })

      yield* Effect.gen(function* () {
        const storage = yield* Storage
        const alias = (value: string) => storage.lookup({ kind: "balanceGroup", value })
        expect(yield* alias("sub-777")).toEqual([])
        expect(yield* alias("0.0.0.1+-balance_group+82896")).toEqual([alone])
        expect(yield* alias("sub-3")).toEqual([implicit])

        const expectedDocuments = [
          { ...documents[0], balanceGroupId: null },
          { ...documents[1], balanceGroupId: null },
          documents[2],
          documents[3],
        ]
        for (const [i, ref] of [first, second, alone, implicit].entries()) {
          // Revisions, journals and the other index keys are kept as they were.
          expect(yield* storage.load(ref)).toEqual(Option.some({ revision: 3, document: expectedDocuments[i] }))
          expect(yield* storage.journal(ref, { afterSeq: 0, limit: 10 })).toEqual(journals[i])
          expect(yield* storage.findEntry(ref, { reference: "inv-1" })).toEqual(Option.some(journals[i]?.[1]))
          expect(yield* storage.lookup({ kind: "order", value: `${holderKey(ref)}#2` })).toEqual([ref])
        }
        expect(yield* storage.lookup({ kind: "subscription", value: "sub-777" })).toHaveLength(2)
        expect(yield* storage.lookup({ kind: "customer", value: "cust-3" })).toHaveLength(2)

        // The freed alias can be claimed now, once.
        const current = Option.getOrThrow(yield* storage.load(first))
        const claim = (ref: HolderRef, stored: typeof current) =>
          storage.commit({
            ref,
            expected: stored.revision,
            document: { ...stored.document, balanceGroupId: "sub-777" },
            entries: [],
            index: [],
            claims: ["sub-777"],
          })
        expect(yield* claim(first, current)).toEqual({ _tag: "Committed", revision: 4 })
        expect(yield* claim(second, Option.getOrThrow(yield* storage.load(second)))).toEqual({
          _tag: "Claimed",
          alias: "sub-777",
          holder: first,
        })
      }).pipe(Effect.provide(SqliteStorage.layer({ filename })))

      raw(filename, (db) => {
        expect(versions(db)).toEqual([1, 2])
        expect(db.prepare("SELECT count(*) FROM creditlock_index WHERE kind = 'balanceGroup'").pluck().get()).toBe(0)
        expect(db.prepare("SELECT alias, holder_key FROM creditlock_aliases ORDER BY alias").all()).toEqual([
          { alias: "0.0.0.1+-balance_group+82896", holder_key: holderKey(alone) },
          { alias: "sub-3", holder_key: holderKey(implicit) },
          { alias: "sub-777", holder_key: holderKey(first) },
        ])
        // The migrated documents are still documents core reads (JSON null, not a missing field).
        const json = db
          .prepare("SELECT document FROM creditlock_holders WHERE holder_key = ?")
          .pluck()
          .get(holderKey(second)) as string
        expect(JSON.parse(json)).toHaveProperty("balanceGroupId", null)
        expect(decodeDocument(json).balanceGroupId).toBeNull()
        expect(db.pragma("foreign_key_check")).toEqual([])
      })
    }),
  )
})
