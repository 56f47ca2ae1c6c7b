/**
 * The SQLite `Storage`, on better-sqlite3. One holder is one row holding its document (JSON, as
 * written by core's `encodeDocument`) and its revision; journal entries and lookup keys live in
 * their own tables, balance-group claims in `creditlock_aliases` (one holder per alias). A commit
 * is one `BEGIN IMMEDIATE` transaction: compare the revision (else `Conflict`), check the claims
 * (else `Claimed`), then write the document, append the entries, add the index rows and record the
 * claims — all of it or nothing. The adapter decides nothing; every rule lives in @creditlock/core.
 *
 * The connection runs in WAL mode (except in memory) with `busy_timeout` (default 5 s),
 * `synchronous=FULL` (default) or `NORMAL`, and `foreign_keys=ON`; the schema is migrated on open.
 * Several processes on the same host may share one file. Every driver exception becomes
 * StorageUnavailable carrying it as `cause` — except a `COMMIT` statement that itself fails, which
 * becomes OutcomeUnknown (see `commit`).
 *
 * better-sqlite3 is synchronous: a call blocks the Node thread while SQLite works, including while
 * it waits up to `busyTimeout` for another process's write to finish.
 *
 * @module
 */
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { OutcomeUnknown, Storage, StorageUnavailable } from "@creditlock/core/storage"
import Database from "better-sqlite3"
import { Config, type ConfigError, Duration, Effect, Either, Layer, Option, type Scope } from "effect"
import { checkNotNewer, currentVersion, latestVersion, migrate, SchemaVersionError } from "./internal/migrations.js"
import { CommitOutcomeUnknown, prepare } from "./internal/statements.js"

/** The schema version this build of the adapter writes (recorded in `creditlock_schema_version`). */
export const schemaVersion: number = latestVersion

/**
 * `FULL` (default): a commit is durable once it returns, even across power loss. `NORMAL`: faster
 * commits; a commit survives a crash of the process but the last commits before a power loss or
 * operating-system crash may be lost (the database itself stays consistent).
 */
export type Synchronous = "FULL" | "NORMAL"

/** How the adapter configures a connection (its own or the caller's). */
export interface ConnectionOptions {
  /** How long a write waits for another connection's write lock before failing; default 5 seconds. */
  readonly busyTimeout?: Duration.DurationInput | undefined
  /** The durability of commits; default `"FULL"`. See {@link Synchronous}. */
  readonly synchronous?: Synchronous | undefined
}

/** Options of {@link make} and {@link layer}. */
export interface SqliteStorageOptions extends ConnectionOptions {
  /**
   * The database file (created, with its directory, when missing), or `":memory:"` for a private
   * in-memory database that lives as long as the layer.
   */
  readonly filename: string
}

/** The default `busyTimeout`: 5 seconds. */
export const DEFAULT_BUSY_TIMEOUT: Duration.Duration = Duration.seconds(5)

/** SQLite's `busy_timeout` is a C int of milliseconds. */
const MAX_BUSY_TIMEOUT_MILLIS = 2_147_483_647

const describe = (cause: unknown): string => {
  if (cause instanceof Database.SqliteError) return `${cause.code}: ${cause.message}`
  if (cause instanceof SchemaVersionError) return cause.message
  // JSON.parse quotes the offending text in its message; stored data stays out of the detail.
  if (cause instanceof SyntaxError) return "stored data is not valid JSON"
  if (cause instanceof Error) return cause.message
  return "unknown failure"
}

const unavailable = (operation: string, cause: unknown): StorageUnavailable =>
  new StorageUnavailable({ detail: `SQLite storage could not ${operation}: ${describe(cause)}`, cause })

/** Runs a synchronous driver call; any exception becomes StorageUnavailable. */
const attempt = <A>(operation: string, f: () => A): Effect.Effect<A, StorageUnavailable> =>
  Effect.try({ try: f, catch: (cause) => unavailable(operation, cause) })

interface Settings {
  readonly busyTimeoutMillis: number
  readonly synchronous: Synchronous
}

const settings = (options: ConnectionOptions): Either.Either<Settings, string> => {
  const synchronous = options.synchronous ?? "FULL"
  // The value is interpolated into a PRAGMA, so only the two known words get through.
  if (synchronous !== "FULL" && synchronous !== "NORMAL") {
    return Either.left(`synchronous must be "FULL" or "NORMAL", got ${JSON.stringify(synchronous)}`)
  }
  const decoded = Duration.decodeUnknown(options.busyTimeout ?? DEFAULT_BUSY_TIMEOUT)
  if (Option.isNone(decoded) || !Duration.isFinite(decoded.value)) {
    return Either.left("busyTimeout must be a finite duration")
  }
  const busyTimeoutMillis = Math.min(Math.max(0, Math.round(Duration.toMillis(decoded.value))), MAX_BUSY_TIMEOUT_MILLIS)
  return Either.right({ busyTimeoutMillis, synchronous })
}

const validSettings = (options: ConnectionOptions): Effect.Effect<Settings, StorageUnavailable> =>
  Either.match(settings(options), {
    onLeft: (detail) => Effect.fail(new StorageUnavailable({ detail: `invalid SQLite storage options: ${detail}` })),
    onRight: Effect.succeed,
  })

/**
 * Sets the pragmas and migrates. The schema version is checked before anything is written, so a
 * database of a newer schema is left exactly as it was (not even switched to WAL).
 */
const configure = (db: Database.Database, { busyTimeoutMillis, synchronous }: Settings): void => {
  // Connection-level settings first: they write nothing to the file.
  db.pragma(`busy_timeout = ${busyTimeoutMillis}`)
  db.pragma(`synchronous = ${synchronous}`)
  db.pragma("foreign_keys = ON")
  const version = currentVersion(db)
  checkNotNewer(version)
  if (!db.memory) {
    const mode = db.pragma("journal_mode = WAL", { simple: true })
    if (mode !== "wal") throw new Error(`could not switch the database to WAL mode (journal_mode is ${String(mode)})`)
  }
  // An up-to-date database is only read, so it may be opened read-only.
  if (version < latestVersion) migrate(db, Date.now())
}

const storageOver = (db: Database.Database, options: ConnectionOptions) =>
  Effect.gen(function* () {
    const valid = yield* validSettings(options)
    yield* attempt("open the database", () => configure(db, valid))
    const statements = yield* attempt("prepare its statements", () => prepare(db))
    return Storage.of({
      load: (ref) =>
        Effect.map(
          attempt("load a holder", () => statements.load(ref)),
          Option.fromNullable,
        ),
      // A commit is one transaction. An exception raised before its COMMIT (BEGIN IMMEDIATE still
      // busy after busy_timeout, a constraint, a full disk, a closed connection, …) means it was
      // rolled back — by better-sqlite3 or by SQLite itself — so nothing was written and
      // StorageUnavailable is exact. Only an exception from the COMMIT statement can follow a
      // commit record that reached the file, so that one is an unknown outcome.
      commit: (request) =>
        Effect.try({
          try: () => statements.commit(request),
          catch: (cause) =>
            cause instanceof CommitOutcomeUnknown
              ? new OutcomeUnknown({
                  detail: `SQLite storage could not confirm a commit: ${describe(cause.cause)}`,
                  cause: cause.cause,
                })
              : unavailable("commit", cause),
        }),
      lookup: (key) => attempt("look up holders", () => statements.lookup(key)),
      findEntry: (ref, selector) =>
        Effect.map(
          attempt("find a journal entry", () => statements.findEntry(ref, selector)),
          Option.fromNullable,
        ),
      journal: (ref, range) => attempt("read the journal", () => statements.journal(ref, range)),
      ping: attempt("answer a ping", () => statements.ping()),
    })
  })

/**
 * A `Storage` over a database the library opens at `options.filename`, configured and migrated,
 * and closed when the scope closes. Fails with StorageUnavailable when the file cannot be opened,
 * the options are invalid, or the database has a newer schema than this version supports.
 */
export const make = (options: SqliteStorageOptions): Effect.Effect<Storage["Type"], StorageUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const valid = yield* validSettings(options)
    const db = yield* Effect.acquireRelease(
      attempt("open the database", () => {
        if (options.filename !== ":memory:" && options.filename !== "") {
          mkdirSync(dirname(options.filename), { recursive: true })
        }
        return new Database(options.filename, { timeout: valid.busyTimeoutMillis })
      }),
      (db) =>
        Effect.try(() => {
          if (db.open) db.close()
        }).pipe(Effect.catchAll((cause) => Effect.logWarning("closing the SQLite database failed", cause))),
    )
    return yield* storageOver(db, options)
  })

/** The `Storage` of {@link make} as a layer; the database is closed when the layer is released. */
export const layer = (options: SqliteStorageOptions): Layer.Layer<Storage, StorageUnavailable> =>
  Layer.scoped(Storage, make(options))

/**
 * {@link layer} with its options read from configuration, for instance
 * `layerConfig({ filename: Config.string("CREDIT_SQLITE_FILE") })`.
 */
export const layerConfig = (
  config: Config.Config.Wrap<SqliteStorageOptions>,
): Layer.Layer<Storage, StorageUnavailable | ConfigError.ConfigError> =>
  Layer.scoped(Storage, Effect.flatMap(Config.unwrap(config), make))

/**
 * A `Storage` over the caller's own better-sqlite3 `Database`, which stays open: closing it is the
 * caller's business, and the storage fails with StorageUnavailable once it is closed. The
 * connection is configured like the library's own (WAL unless in memory, `busy_timeout`,
 * `synchronous`, `foreign_keys=ON`) and the schema is migrated. A commit issued while the caller
 * has a transaction open on the same connection becomes a savepoint of it.
 */
export const fromDatabase = (
  db: Database.Database,
  options: ConnectionOptions = {},
): Effect.Effect<Storage["Type"], StorageUnavailable> => storageOver(db, options)

/** {@link fromDatabase} as a layer; releasing it leaves the database open. */
export const layerFromDatabase = (
  db: Database.Database,
  options: ConnectionOptions = {},
): Layer.Layer<Storage, StorageUnavailable> => Layer.effect(Storage, fromDatabase(db, options))
