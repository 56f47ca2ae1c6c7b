/**
 * The PostgreSQL `Storage`, on pg (node-postgres). One holder is one row of `<schema>.holders`
 * holding its document (JSON text, as written by core's `encodeDocument`) and its revision;
 * journal entries, lookup keys and balance-group claims live in their own tables. A commit is one
 * statement — `SELECT * FROM <schema>.commit_holder(…)`, a function the migration installs — so
 * one round trip and one implicit transaction at READ COMMITTED: compare-and-set on the revision
 * (else `Conflict`), the claims (else `Claimed`), then the entries and index rows, all of it or
 * nothing. The adapter decides nothing; every rule lives in @creditlock/core.
 *
 * Failures: every read failure is StorageUnavailable. A commit is StorageUnavailable when it was
 * certainly not applied (no connection within `connectTimeout`, or an `ERROR` reply: the statement
 * and its transaction were rolled back) — but `Conflict` when that error says it lost a race to
 * another commit (a serialization failure or a deadlock, in its own implicit transaction) — and
 * OutcomeUnknown when it may have been (sent, then the
 * connection dropped or was terminated, or no reply within the statement timeout). A commit is
 * sent once or never, and never after its call answered or was interrupted. A pool connection
 * found inside a transaction block (given back without its end) is destroyed, and the call
 * answers StorageUnavailable. See the package README.
 *
 * @module
 */
import { createHash } from "node:crypto"
import {
  type CommitRequest,
  type CommitResult,
  decodeDocument,
  encodeDocument,
  type HolderRef,
  type HolderType,
  holderKey,
  type JournalEntry,
  OutcomeUnknown,
  Storage,
  StorageUnavailable,
} from "@creditlock/core/storage"
import { Config, type ConfigError, type Duration, Effect, Layer, Option, Redacted, type Scope } from "effect"
import { type ClientBase, Pool, type PoolConfig } from "pg"
import { clientExecutor, type Executor, poolExecutor, type StatementFailure } from "./internal/executor.js"
import { latestVersion, migrate, SchemaVersionError } from "./internal/migrations.js"
import {
  CONNECT_TIMEOUT,
  invalid,
  millis,
  REPLY_GRACE_MILLIS,
  type Settings,
  STATEMENT_TIMEOUT,
  settingsOf,
} from "./internal/settings.js"

/** The schema version this build of the adapter writes (recorded in `<schema>.schema_version`). */
export const schemaVersion: number = latestVersion

/** The default `schema`: `creditlock`. */
export const DEFAULT_SCHEMA = "creditlock"

/** The default `statementTimeout`: 5 seconds. */
export const DEFAULT_STATEMENT_TIMEOUT: Duration.Duration = STATEMENT_TIMEOUT

/** The default `connectTimeout`: 5 seconds. */
export const DEFAULT_CONNECT_TIMEOUT: Duration.Duration = CONNECT_TIMEOUT

/** The default `poolSize` of the library's own pool: 10 connections. */
export const DEFAULT_POOL_SIZE = 10

/** Settings that apply to the library's own pool and to a caller's. */
export interface AdapterOptions {
  /**
   * The PostgreSQL schema holding the adapter's tables and function (created by the migration
   * when missing); default `creditlock`. Lower-case letters, digits and `_`, starting with a
   * letter or `_`, at most 63 characters, not starting with `pg_` (reserved by PostgreSQL).
   */
  readonly schema?: string | undefined
  /**
   * How long one statement may run. On the library's own pool it is the server's
   * `statement_timeout` (the server cancels the statement and rolls it back: StorageUnavailable);
   * on both, the client stops waiting for a reply one second later (a commit then answers
   * OutcomeUnknown). Default 5 seconds.
   */
  readonly statementTimeout?: Duration.DurationInput | undefined
  /**
   * Whether the two statements every operation sends — a holder's load and the commit — run as
   * named prepared statements (`creditlock_…`), parsed once per connection and then only bound
   * and executed: less for the server to parse and plan, fewer bytes on the wire. Default `true`.
   * Set `false` behind a pooler that hands one server session to several clients and does not
   * track prepared statements (PgBouncer in transaction or statement mode before 1.21, or
   * without `max_prepared_statements`). A connection whose prepared statement was dropped under
   * it (`DEALLOCATE`, `DISCARD ALL`) answers that one call StorageUnavailable (not applied) and
   * is destroyed; the next call prepares on a fresh connection. {@link fromClient} never
   * prepares: the connection is the caller's.
   */
  readonly preparedStatements?: boolean | undefined
}

/** Options of {@link make} and {@link layer}. */
export interface PostgresStorageOptions extends AdapterOptions {
  /** `postgres://user:password@host:port/database?…` (or `postgresql://…`); `Redacted` keeps a password out of logs. */
  readonly connectionString: string | Redacted.Redacted<string>
  /** How long to wait for a connection (a new one, or a free one of the pool); default 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** The most connections the library's pool opens; default 10. */
  readonly poolSize?: number | undefined
  /** The `application_name` the connections report (seen in `pg_stat_activity`); default `creditlock`. */
  readonly applicationName?: string | undefined
}

const describe = (cause: Error): string => {
  const code = (cause as { code?: unknown }).code
  // JSON.parse quotes the offending text in its message; stored data stays out of the detail.
  if (cause instanceof SyntaxError) return "stored data is not valid JSON"
  return typeof code === "string" ? `${code}: ${cause.message}` : cause.message
}

const unavailable = (operation: string, failure: StatementFailure | Error): StorageUnavailable => {
  const cause = failure instanceof Error ? failure : failure.cause
  return new StorageUnavailable({ detail: `PostgreSQL storage could not ${operation}: ${describe(cause)}`, cause })
}

const decode = <A>(operation: string, f: () => A): Effect.Effect<A, StorageUnavailable> =>
  Effect.try({
    try: f,
    catch: (cause) => unavailable(operation, cause instanceof Error ? cause : new Error("unknown")),
  })

interface HolderRow {
  readonly revision: string
  readonly document: string
}

interface RefRow {
  readonly customer_id: string
  readonly holder_type: string
  readonly holder_id: string
}

interface EntryRow {
  readonly entry: string
}

interface CommitRow {
  readonly o_outcome: string
  readonly o_revision: string | null
  readonly o_alias: string | null
  readonly o_customer: string | null
  readonly o_type: string | null
  readonly o_holder: string | null
}

/** A commit row with nothing but its outcome. */
const NO_ROW: CommitRow = {
  o_outcome: "",
  o_revision: null,
  o_alias: null,
  o_customer: null,
  o_type: null,
  o_holder: null,
}

/**
 * Whether an error reply says the statement lost a race to a concurrent transaction and was
 * rolled back: a serialization failure (40001, what REPEATABLE READ and SERIALIZABLE answer where
 * READ COMMITTED re-checks the revision) or a deadlock (40P01).
 */
const lostRace = (code: string | undefined): boolean => code === "40001" || code === "40P01"

const toRef = (row: RefRow): HolderRef => ({
  customerId: row.customer_id,
  holderType: row.holder_type as HolderType,
  holderId: row.holder_id,
})

const decodeEntry = (row: EntryRow): JournalEntry => JSON.parse(row.entry) as JournalEntry

const unique = <A>(values: ReadonlyArray<A>, key: (a: A) => string): ReadonlyArray<A> => {
  const seen = new Map<string, A>()
  for (const value of values) if (!seen.has(key(value))) seen.set(key(value), value)
  return [...seen.values()]
}

/**
 * The name of a prepared statement for `text`: `creditlock_` and a digest of the text, so one
 * name never stands for two texts (another schema, another version of the adapter).
 */
const statementName = (text: string): string =>
  `creditlock_${createHash("sha256").update(text).digest("hex").slice(0, 24)}`

/** The statement of a commit in the schema `quoted`. */
const commitStatementText = (quoted: string): string =>
  `SELECT * FROM ${quoted}.commit_holder($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`

/** The parameters of a commit's statement. */
const commitValues = (request: CommitRequest): ReadonlyArray<unknown> => {
  const { ref, expected, entries } = request
  const index = unique(request.index, (k) => `${k.kind}\u0000${k.value}`)
  // Sorted, so that two commits claiming the same aliases take their rows in the same order.
  const claims = [...new Set(request.claims)].sort()
  return [
    holderKey(ref),
    ref.customerId,
    ref.holderType,
    ref.holderId,
    expected === "absent" ? null : expected,
    encodeDocument(request.document),
    entries.map((e) => e.seq),
    entries.map((e) => e.id),
    entries.map((e) => e.reference ?? null),
    entries.map((e) => JSON.stringify(e)),
    index.map((k) => k.kind),
    index.map((k) => k.value),
    claims,
  ]
}

const commitResult = (rows: ReadonlyArray<CommitRow>): CommitResult => {
  const row = rows[0]
  if (row?.o_outcome === "committed" && row.o_revision !== null) {
    return { _tag: "Committed", revision: Number(row.o_revision) }
  }
  if (row?.o_outcome === "conflict") return { _tag: "Conflict" }
  if (row?.o_outcome === "claimed" && row.o_alias !== null) {
    if (row.o_customer === null || row.o_type === null || row.o_holder === null) {
      throw new Error(`the claim of balance group ${row.o_alias} names no holder`)
    }
    return {
      _tag: "Claimed",
      alias: row.o_alias,
      holder: toRef({ customer_id: row.o_customer, holder_type: row.o_type, holder_id: row.o_holder }),
    }
  }
  throw new Error(`the commit function answered an unexpected row: ${JSON.stringify(row ?? null)}`)
}

/**
 * PostgreSQL text cannot hold U+0000, so no stored key contains it: a read by such a key has
 * nothing to find (and the server would refuse the parameter).
 */
const unstorable = (...values: ReadonlyArray<string>): boolean => values.some((v) => v.includes("\u0000"))

/** The storage over an executor whose schema is migrated; shared by every constructor. */
const storageOver = (executor: Executor, { quoted }: Settings): Storage["Type"] => {
  const read = <R extends object>(operation: string, text: string, values: ReadonlyArray<unknown>, name?: string) =>
    executor.run<R & Record<string, unknown>>(text, values, name).pipe(
      Effect.map((outcome) => outcome.rows),
      Effect.mapError((f) => unavailable(operation, f)),
    )
  // The statements every operation sends, prepared by name where the executor prepares.
  const loadText = `SELECT revision::text AS revision, document FROM ${quoted}.holders WHERE holder_key = $1`
  const loadName = statementName(loadText)
  const commitText = commitStatementText(quoted)
  const commitName = statementName(commitText)

  return Storage.of({
    load: (ref) =>
      unstorable(holderKey(ref))
        ? Effect.succeed(Option.none())
        : Effect.flatMap(read<HolderRow>("load a holder", loadText, [holderKey(ref)], loadName), (rows) => {
            const row = rows[0]
            if (row === undefined) return Effect.succeed(Option.none())
            return decode("decode a holder", () =>
              Option.some({ revision: Number(row.revision), document: decodeDocument(row.document) }),
            )
          }),
    commit: (request) => {
      return executor.run<CommitRow & Record<string, unknown>>(commitText, commitValues(request), commitName).pipe(
        Effect.map((outcome) => outcome.rows),
        Effect.catchAll(
          (failure): Effect.Effect<ReadonlyArray<CommitRow>, StorageUnavailable | OutcomeUnknown> =>
            // The statement's own transaction lost a race to another commit and was rolled back:
            // nothing was written, as when the revision check fails.
            executor.ownTransactions && failure.applied === "no" && lostRace(failure.code)
              ? Effect.succeed([{ ...NO_ROW, o_outcome: "conflict" }])
              : Effect.fail(
                  failure.applied === "no"
                    ? unavailable("commit", failure)
                    : new OutcomeUnknown({
                        detail: `PostgreSQL storage could not confirm a commit: ${describe(failure.cause)}`,
                        cause: failure.cause,
                      }),
                ),
        ),
        // An answer that cannot be read came from a statement that ran: it may have committed.
        Effect.flatMap((rows) =>
          Effect.try({
            try: () => commitResult(rows),
            catch: (cause) =>
              new OutcomeUnknown({
                detail: `PostgreSQL storage could not read a commit's answer: ${cause instanceof Error ? cause.message : "unknown"}`,
                cause,
              }),
          }),
        ),
      )
    },
    lookup: (key) =>
      unstorable(key.value)
        ? Effect.succeed([])
        : key.kind === "balanceGroup"
          ? Effect.map(
              read<RefRow>(
                "look up a balance group",
                `SELECT h.customer_id, h.holder_type, h.holder_id
               FROM ${quoted}.aliases AS a JOIN ${quoted}.holders AS h ON h.holder_key = a.holder_key
               WHERE a.alias = $1`,
                [key.value],
              ),
              (rows) => rows.map(toRef),
            )
          : Effect.map(
              read<RefRow>(
                "look up holders",
                `SELECT h.customer_id, h.holder_type, h.holder_id
               FROM ${quoted}.index_keys AS i JOIN ${quoted}.holders AS h ON h.holder_key = i.holder_key
               WHERE i.kind = $1 AND i.value = $2`,
                [key.kind, key.value],
              ),
              (rows) => rows.map(toRef),
            ),
    findEntry: (ref, selector) =>
      unstorable(holderKey(ref), "id" in selector ? selector.id : selector.reference)
        ? Effect.succeed(Option.none())
        : Effect.flatMap(
            "id" in selector
              ? read<EntryRow>(
                  "find a journal entry",
                  `SELECT entry FROM ${quoted}.journal WHERE holder_key = $1 AND id = $2`,
                  [holderKey(ref), selector.id],
                )
              : // References are unique per holder by the engine's rules; should a holder ever hold
                // two, the latest wins, as in the reference adapter.
                read<EntryRow>(
                  "find a journal entry",
                  `SELECT entry FROM ${quoted}.journal WHERE holder_key = $1 AND reference = $2 ORDER BY seq DESC LIMIT 1`,
                  [holderKey(ref), selector.reference],
                ),
            (rows) => {
              const row = rows[0]
              return row === undefined
                ? Effect.succeed(Option.none())
                : decode("decode a journal entry", () => Option.some(decodeEntry(row)))
            },
          ),
    journal: (ref, range) =>
      unstorable(holderKey(ref))
        ? Effect.succeed([])
        : Effect.flatMap(
            read<EntryRow>(
              "read the journal",
              `SELECT entry FROM ${quoted}.journal WHERE holder_key = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
              [holderKey(ref), range.afterSeq, range.limit],
            ),
            (rows) => decode("decode the journal", () => rows.map(decodeEntry)),
          ),
    ping: Effect.asVoid(read("answer a ping", "SELECT 1", [])),
  })
}

/** Migrates the schema on one connection of the pool (bounded by the pool's connect timeout). */
const migrated = (pool: Pool, settings: Settings): Effect.Effect<void, StorageUnavailable> =>
  Effect.tryPromise({
    try: () =>
      new Promise<void>((resolve, reject) => {
        // The callback form, so the error listener is in place in the turn the connection is handed over.
        pool.connect((error, client, release) => {
          if (error !== undefined || client === undefined) return reject(error ?? new Error("no connection"))
          const ignore = () => undefined
          client.on("error", ignore)
          migrate(client, settings.schema, settings.quoted).then(
            () => {
              client.removeListener("error", ignore)
              release()
              resolve()
            },
            (cause: unknown) => {
              client.removeListener("error", ignore)
              release(cause instanceof SchemaVersionError ? undefined : (cause as Error))
              reject(cause)
            },
          )
        })
      }),
    catch: (cause) =>
      cause instanceof SchemaVersionError
        ? new StorageUnavailable({ detail: cause.message, cause })
        : unavailable("migrate its schema", cause instanceof Error ? cause : new Error("unknown failure")),
  })

const poolConfig = (options: PostgresStorageOptions, settings: Settings, connectMillis: number): PoolConfig => ({
  connectionString: Redacted.isRedacted(options.connectionString)
    ? Redacted.value(options.connectionString)
    : options.connectionString,
  max: options.poolSize ?? DEFAULT_POOL_SIZE,
  connectionTimeoutMillis: connectMillis,
  statement_timeout: settings.statementMillis,
  query_timeout: settings.statementMillis + REPLY_GRACE_MILLIS,
  keepAlive: true,
  application_name: options.applicationName ?? "creditlock",
})

/**
 * A `Storage` over a pool the library opens from `options.connectionString`, with the schema
 * migrated; the pool is ended when the scope closes. Fails with StorageUnavailable when the
 * options are invalid, the database cannot be reached within `connectTimeout`, or its schema is
 * newer than this version supports.
 */
export const make = (
  options: PostgresStorageOptions,
): Effect.Effect<Storage["Type"], StorageUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const settings = yield* settingsOf(options)
    const connectMillis = yield* millis("connectTimeout", options.connectTimeout, CONNECT_TIMEOUT)
    const poolSize = options.poolSize ?? DEFAULT_POOL_SIZE
    if (!Number.isSafeInteger(poolSize) || poolSize < 1) {
      return yield* invalid(`poolSize must be a positive integer, got ${String(options.poolSize)}`)
    }
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const pool = new Pool(poolConfig(options, settings, connectMillis))
        // An idle connection that fails (a restart, a terminated backend) is dropped by the pool;
        // without a listener its error would end the process.
        pool.on("error", () => undefined)
        return pool
      }),
      (pool) =>
        Effect.tryPromise(() => pool.end()).pipe(
          Effect.catchAll((cause) => Effect.logWarning("ending the PostgreSQL pool failed", cause)),
        ),
    )
    yield* migrated(pool, settings)
    return storageOver(poolExecutor(pool, settings.statementMillis + REPLY_GRACE_MILLIS, settings.prepared), settings)
  })

/** The `Storage` of {@link make} as a layer; the pool is ended when the layer is released. */
export const layer = (options: PostgresStorageOptions): Layer.Layer<Storage, StorageUnavailable> =>
  Layer.scoped(Storage, make(options))

/**
 * {@link layer} with its options read from configuration, for instance
 * `layerConfig({ connectionString: Config.redacted("DATABASE_URL") })`.
 */
export const layerConfig = (
  config: Config.Config.Wrap<PostgresStorageOptions>,
): Layer.Layer<Storage, StorageUnavailable | ConfigError.ConfigError> =>
  Layer.scoped(Storage, Effect.flatMap(Config.unwrap(config), make))

/**
 * A `Storage` over the caller's own `pg.Pool`, which stays open: ending it is the caller's
 * business. The schema is migrated. The pool's own settings are used as they are — give it a
 * `statement_timeout` (and a `connectionTimeoutMillis`) so that a statement the client stopped
 * waiting for is also cancelled on the server; the storage stops waiting for a reply
 * `statementTimeout` plus one second after sending, whatever the pool says. The caller's pool
 * should have an `error` listener (node-postgres ends the process on an idle connection's error
 * without one).
 */
export const fromPool = (
  pool: Pool,
  options: AdapterOptions = {},
): Effect.Effect<Storage["Type"], StorageUnavailable> =>
  Effect.gen(function* () {
    const settings = yield* settingsOf(options)
    yield* migrated(pool, settings)
    return storageOver(poolExecutor(pool, settings.statementMillis + REPLY_GRACE_MILLIS, settings.prepared), settings)
  })

/** {@link fromPool} as a layer; releasing it leaves the pool open. */
export const layerFromPool = (pool: Pool, options: AdapterOptions = {}): Layer.Layer<Storage, StorageUnavailable> =>
  Layer.effect(Storage, fromPool(pool, options))

/**
 * A `Storage` whose every statement runs on `client`, a connection the caller holds — typically
 * inside its own `BEGIN`, so that a commit of the engine is part of the caller's transaction and
 * becomes durable (or is rolled back) with it. Nothing is migrated here (a migration would commit
 * the caller's transaction): the schema must be up to date already (build a storage with
 * {@link make} or {@link fromPool} once at start), else this fails with StorageUnavailable.
 * The storage must not be used after the caller's transaction ended. See `PostgresTransaction`
 * for the whole pattern, events included.
 */
export const fromClient = (
  client: ClientBase,
  options: AdapterOptions = {},
): Effect.Effect<Storage["Type"], StorageUnavailable> =>
  Effect.gen(function* () {
    const settings = yield* settingsOf(options)
    const executor = clientExecutor(client, settings.statementMillis + REPLY_GRACE_MILLIS)
    // Two reads, so that a missing table is not an error (which would abort the caller's transaction).
    const readVersion = <R extends object>(text: string, values: ReadonlyArray<unknown>) =>
      executor.run<R & Record<string, unknown>>(text, values).pipe(
        Effect.map((outcome) => outcome.rows[0]),
        Effect.mapError((f) => unavailable("read its schema version", f)),
      )
    const table = yield* readVersion<{ readonly found: string | null }>("SELECT to_regclass($1)::text AS found", [
      `${settings.quoted}.schema_version`,
    ])
    const version =
      table?.found == null
        ? 0
        : ((yield* readVersion<{ readonly version: number | null }>(
            `SELECT max(version)::int AS version FROM ${settings.quoted}.schema_version`,
            [],
          ))?.version ?? 0)
    if (version > latestVersion) {
      return yield* new StorageUnavailable({
        detail: new SchemaVersionError(settings.schema, version, latestVersion).message,
      })
    }
    if (version < latestVersion) {
      return yield* new StorageUnavailable({
        detail: `the PostgreSQL schema ${settings.schema} is at creditlock schema version ${version}, not ${latestVersion}: build a storage with make or fromPool once to migrate it`,
      })
    }
    return storageOver(executor, settings)
  })

/** {@link fromClient} as a layer. */
export const layerFromClient = (
  client: ClientBase,
  options: AdapterOptions = {},
): Layer.Layer<Storage, StorageUnavailable> => Layer.effect(Storage, fromClient(client, options))
