import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CreditEngine, type HolderRef, OutcomeUnknown, Storage, StorageUnavailable } from "@creditlock/core"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Config, ConfigProvider, Effect, Layer, Option } from "effect"
import { afterAll } from "vitest"
import { SqliteStorage } from "../src/index.js"
import { opening } from "./Requests.js"

const dir = mkdtempSync(join(tmpdir(), "creditlock-sqlite-failures-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let files = 0
const freshFile = () => join(dir, `db-${++files}.sqlite`)

const ref = (holderId = `sub-${files}-${Math.random().toString(36).slice(2)}`): HolderRef => ({
  customerId: "cust-failures",
  holderType: "contracts",
  holderId,
})

const engineOver = <E>(storage: Layer.Layer<Storage, E>) => CreditEngine.layer().pipe(Layer.provideMerge(storage))

/** Opens a holder, locks it and credits it, returning the lock key. */
const funded = (holder: HolderRef) =>
  Effect.gen(function* () {
    const engine = yield* CreditEngine
    yield* engine.openHolder(holder)
    const { lock } = yield* engine.lock(holder)
    yield* engine.modify(holder, lock.key, {
      reason: "seed",
      modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: 100 } }],
    })
    return lock.key
  })

/** Everything stored for a holder, to prove that a failed call wrote nothing. */
const stored = (holder: HolderRef) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    return {
      holder: yield* storage.load(holder),
      journal: yield* storage.journal(holder, { afterSeq: 0, limit: 1000 }),
    }
  })

/** Runs `effect`, expecting StorageUnavailable whose cause has the SQLite error `code`. */
const expectUnavailable = <A, E, R>(effect: Effect.Effect<A, E, R>, code?: string) =>
  Effect.gen(function* () {
    const error = yield* Effect.flip(effect)
    expect((error as { readonly _tag?: unknown })._tag).toBe("StorageUnavailable")
    expect(error).toBeInstanceOf(StorageUnavailable)
    const unavailable = error as StorageUnavailable
    expect(unavailable.status).toBe(503)
    if (code !== undefined) {
      expect(unavailable.cause).toBeInstanceOf(Database.SqliteError)
      expect((unavailable.cause as InstanceType<typeof Database.SqliteError>).code).toBe(code)
      expect(unavailable.detail).toContain(code)
    }
    return unavailable
  })

/** Holds the write lock of `filename` from another connection while `effect` runs. */
const whileWriteLocked = <A, E, R>(filename: string, effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const blocker = new Database(filename)
      blocker.prepare("BEGIN IMMEDIATE").run()
      return blocker
    }),
    () => effect,
    (blocker) =>
      Effect.sync(() => {
        blocker.prepare("ROLLBACK").run()
        blocker.close()
      }),
  )

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const started = Date.now()
    const result = yield* effect
    return { result, millis: Date.now() - started }
  })

describe("sqlite: driver failures become StorageUnavailable", () => {
  it.live("a write still blocked after busyTimeout → SQLITE_BUSY; nothing written, and it works once free", () => {
    const filename = freshFile()
    const holder = ref()
    return Effect.gen(function* () {
      const engine = yield* CreditEngine
      const key = yield* funded(holder)
      const before = yield* stored(holder)
      const unlock = engine.unlock(holder, key)
      const { millis } = yield* timed(whileWriteLocked(filename, expectUnavailable(unlock, "SQLITE_BUSY")))
      expect(millis).toBeGreaterThanOrEqual(180)
      expect(yield* stored(holder)).toEqual(before)
      yield* unlock
      expect(yield* stored(holder)).not.toEqual(before)
    }).pipe(Effect.provide(engineOver(SqliteStorage.layer({ filename, busyTimeout: "200 millis" }))))
  })

  it.live("layerConfig reads filename and busyTimeout from configuration", () => {
    const filename = freshFile()
    const holder = ref()
    const layer = SqliteStorage.layerConfig({
      filename: Config.string("SQLITE_FILE"),
      busyTimeout: Config.duration("SQLITE_BUSY_TIMEOUT"),
      synchronous: Config.literal("FULL", "NORMAL")("SQLITE_SYNCHRONOUS"),
    })
    const provider = ConfigProvider.fromMap(
      new Map([
        ["SQLITE_FILE", filename],
        ["SQLITE_BUSY_TIMEOUT", "400 millis"],
        ["SQLITE_SYNCHRONOUS", "NORMAL"],
      ]),
    )
    return Effect.gen(function* () {
      const engine = yield* CreditEngine
      yield* engine.openHolder(holder)
      const { millis } = yield* timed(whileWriteLocked(filename, expectUnavailable(engine.lock(holder), "SQLITE_BUSY")))
      expect(millis).toBeGreaterThanOrEqual(380)
      expect(existsSync(filename)).toBe(true)
    }).pipe(Effect.provide(engineOver(layer)), Effect.withConfigProvider(provider))
  })

  it.effect("layerConfig without the configuration fails with a ConfigError", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Layer.build(SqliteStorage.layerConfig({ filename: Config.string("SQLITE_FILE") })).pipe(Effect.scoped),
      )
      expect(error._tag).toBe("ConfigError")
    }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))),
  )

  it.scoped("a read-only connection: reads work, writes fail with SQLITE_READONLY", () =>
    Effect.gen(function* () {
      const filename = freshFile()
      const holder = ref()
      // The writer keeps the file open (and its WAL index present) while the reader works.
      const writer = yield* Layer.build(engineOver(SqliteStorage.layer({ filename })))
      yield* funded(holder).pipe(Effect.provide(writer))
      const readonly = yield* Effect.acquireRelease(
        Effect.sync(() => new Database(filename, { readonly: true })),
        (db) => Effect.sync(() => db.close()),
      )
      const reader = yield* Layer.build(engineOver(SqliteStorage.layerFromDatabase(readonly)))
      yield* Effect.gen(function* () {
        const engine = yield* CreditEngine
        yield* Effect.flatMap(CreditEngine, (e) => e.unlockCustomer({ customerId: holder.customerId })).pipe(
          Effect.provide(writer),
        )
        expect((yield* engine.verify(holder)).ok).toBe(true)
        const before = yield* stored(holder)
        expect(Option.isSome(before.holder)).toBe(true)
        const error = yield* expectUnavailable(engine.lock(holder))
        expect((error.cause as { code?: string }).code).toMatch(/^SQLITE_READONLY/)
        expect(yield* stored(holder)).toEqual(before)
      }).pipe(Effect.provide(reader))
    }),
  )

  it.effect("a full database → SQLITE_FULL, and no part of the commit is written", () =>
    Effect.gen(function* () {
      const db = new Database(freshFile())
      const holder = ref()
      yield* Effect.gen(function* () {
        const storage = yield* Storage
        yield* funded(holder)
        const before = yield* stored(holder)
        const current = Option.getOrThrow(before.holder)
        // A large entry needs new pages, which the page limit below refuses.
        const entry = {
          id: `entry-${Math.random()}`,
          seq: current.document.journalSeq + 1,
          at: 0,
          holder,
          kind: "modification" as const,
          reason: "x".repeat(200_000),
          changes: [],
        }
        const request = {
          ref: holder,
          expected: current.revision,
          document: { ...current.document, journalSeq: entry.seq },
          entries: [entry],
          index: [{ kind: "order" as const, value: entry.id }],
          claims: [],
        }
        db.pragma(`max_page_count = ${db.pragma("page_count", { simple: true })}`)
        yield* expectUnavailable(storage.commit(request), "SQLITE_FULL")
        expect(yield* stored(holder)).toEqual(before)
        expect(yield* storage.lookup({ kind: "order", value: entry.id })).toEqual([])
        db.pragma("max_page_count = 1073741823")
        expect(yield* storage.commit(request)).toEqual({ _tag: "Committed", revision: current.revision + 1 })
        expect(yield* storage.lookup({ kind: "order", value: entry.id })).toEqual([holder])
      }).pipe(Effect.provide(engineOver(SqliteStorage.layerFromDatabase(db))))
      db.close()
    }),
  )

  it.effect("a COMMIT statement that fails → OutcomeUnknown, not StorageUnavailable", () =>
    Effect.gen(function* () {
      const db = new Database(freshFile())
      const storage = yield* SqliteStorage.fromDatabase(db)
      // A foreign key checked only at COMMIT (temporary tables of this connection), broken by a
      // trigger on the journal: every write of the commit succeeds and the COMMIT statement
      // fails, as an fsync error at COMMIT would.
      db.exec(`
        CREATE TEMP TABLE parent (id TEXT PRIMARY KEY);
        CREATE TEMP TABLE child (parent_id TEXT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
        CREATE TEMP TRIGGER break_commit AFTER INSERT ON main.creditlock_journal
          BEGIN INSERT INTO temp.child VALUES ('missing'); END;
      `)
      const holder = ref()
      const error = yield* Effect.flip(storage.commit(opening(holder, `bg-${holder.holderId}`, 1)))
      expect(error).toBeInstanceOf(OutcomeUnknown)
      expect(error.detail).toContain("SQLITE_CONSTRAINT_FOREIGNKEY")
      // (Here SQLite kept the transaction open and better-sqlite3 rolled it back.)
      expect(db.inTransaction).toBe(false)
      expect(yield* storage.load(holder)).toEqual(Option.none())
      db.exec("DROP TRIGGER temp.break_commit")
      expect(yield* storage.commit(opening(holder, `bg-${holder.holderId}`, 1))).toEqual({
        _tag: "Committed",
        revision: 1,
      })
      db.close()
    }),
  )

  it.effect("a closed database: every method fails with StorageUnavailable", () =>
    Effect.gen(function* () {
      const db = new Database(freshFile())
      const holder = ref()
      const storage = yield* SqliteStorage.fromDatabase(db)
      yield* funded(holder).pipe(Effect.provide(engineOver(Layer.succeed(Storage, storage))))
      const current = Option.getOrThrow(yield* storage.load(holder))
      db.close()
      const calls = [
        storage.load(holder),
        storage.commit({
          ref: holder,
          expected: current.revision,
          document: current.document,
          entries: [],
          index: [],
          claims: [],
        }),
        storage.lookup({ kind: "customer", value: holder.customerId }),
        storage.findEntry(holder, { id: "x" }),
        storage.findEntry(holder, { reference: "x" }),
        storage.journal(holder, { afterSeq: 0, limit: 10 }),
        storage.ping,
      ] as const
      for (const call of calls) {
        const error = yield* expectUnavailable(call as Effect.Effect<unknown, StorageUnavailable>)
        expect(error.detail).toContain("not open")
      }
      yield* expectUnavailable(SqliteStorage.fromDatabase(db))
    }),
  )

  it.effect("corrupt stored data → StorageUnavailable, without the data in the detail", () =>
    Effect.gen(function* () {
      const db = new Database(freshFile())
      const holder = ref()
      const storage = yield* SqliteStorage.fromDatabase(db)
      yield* funded(holder).pipe(Effect.provide(engineOver(Layer.succeed(Storage, storage))))
      const [first] = yield* storage.journal(holder, { afterSeq: 0, limit: 1 })

      db.prepare("UPDATE creditlock_journal SET entry = 'secret-garbage' WHERE seq = 1").run()
      const journalError = yield* expectUnavailable(storage.journal(holder, { afterSeq: 0, limit: 10 }))
      expect(journalError.detail).not.toContain("secret-garbage")
      yield* expectUnavailable(storage.findEntry(holder, { id: first?.id ?? "" }))

      db.prepare("UPDATE creditlock_holders SET document = '{\"format\": 1, secret-garbage'").run()
      const loadError = yield* expectUnavailable(storage.load(holder))
      expect(loadError.detail).not.toContain("secret-garbage")

      db.prepare("UPDATE creditlock_holders SET document = '{\"format\": 99}'").run()
      expect((yield* expectUnavailable(storage.load(holder))).detail).toContain("format 99")
      db.close()
    }),
  )

  it.effect("a file that cannot be opened, and invalid options, fail with StorageUnavailable", () =>
    Effect.gen(function* () {
      yield* expectUnavailable(Effect.scoped(SqliteStorage.make({ filename: dir })), "SQLITE_CANTOPEN")
      const badSync = yield* expectUnavailable(
        Effect.scoped(SqliteStorage.make({ filename: ":memory:", synchronous: "OFF" as "FULL" })),
      )
      expect(badSync.detail).toContain("synchronous")
      const badTimeout = yield* expectUnavailable(
        Effect.scoped(SqliteStorage.make({ filename: ":memory:", busyTimeout: "forever" as "1 second" })),
      )
      expect(badTimeout.detail).toContain("busyTimeout")
    }),
  )
})

describe("sqlite: connections", () => {
  it.effect("a caller's Database is configured and stays open after the layer is released", () =>
    Effect.gen(function* () {
      const db = new Database(freshFile())
      const holder = ref()
      yield* funded(holder).pipe(
        Effect.provide(engineOver(SqliteStorage.layerFromDatabase(db, { busyTimeout: "1234 millis" }))),
      )
      expect(db.open).toBe(true)
      expect(db.prepare("SELECT count(*) FROM creditlock_journal").pluck().get()).toBe(2)
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal")
      expect(db.pragma("busy_timeout", { simple: true })).toBe(1234)
      expect(db.pragma("synchronous", { simple: true })).toBe(2)
      expect(db.pragma("foreign_keys", { simple: true })).toBe(1)
      yield* SqliteStorage.fromDatabase(db, { synchronous: "NORMAL" })
      expect(db.pragma("synchronous", { simple: true })).toBe(1)
      expect(db.pragma("busy_timeout", { simple: true })).toBe(5000)
      db.close()
    }),
  )

  it.effect("a caller's connection that reads integers as BigInt works the same", () =>
    Effect.gen(function* () {
      const db = new Database(":memory:").defaultSafeIntegers(true)
      const holder = ref()
      const key = yield* funded(holder).pipe(Effect.provide(engineOver(SqliteStorage.layerFromDatabase(db))))
      const stored = yield* Effect.flatMap(CreditEngine, (engine) =>
        Effect.zipRight(engine.unlock(holder, key), engine.verify(holder)),
      ).pipe(Effect.provide(engineOver(SqliteStorage.layerFromDatabase(db))))
      expect(stored.ok).toBe(true)
      db.close()
    }),
  )

  it.effect("an in-memory database is not switched to WAL", () =>
    Effect.gen(function* () {
      const db = new Database(":memory:")
      yield* SqliteStorage.fromDatabase(db)
      expect(db.pragma("journal_mode", { simple: true })).toBe("memory")
      expect(db.pragma("foreign_keys", { simple: true })).toBe(1)
      db.close()
    }),
  )

  it.effect("a database the library opened is closed when its scope closes", () =>
    Effect.gen(function* () {
      const filename = join(dir, "nested", "directory", "owned.sqlite")
      const holder = ref()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* SqliteStorage.make({ filename })
          yield* funded(holder).pipe(Effect.provide(engineOver(Layer.succeed(Storage, storage))))
          // In WAL mode the -wal file lives as long as a connection is open.
          expect(existsSync(`${filename}-wal`)).toBe(true)
        }),
      )
      expect(existsSync(filename)).toBe(true)
      expect(existsSync(`${filename}-wal`)).toBe(false)
    }),
  )
})
