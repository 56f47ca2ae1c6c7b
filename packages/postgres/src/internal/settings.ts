/**
 * The checked settings every constructor of the adapter (and `PostgresTransaction`) works from:
 * the schema name and the statement timeout, validated once, in one place.
 *
 * @internal
 */
import { StorageUnavailable } from "@creditlock/core/storage"
import { Duration, Effect, Option } from "effect"

/** The default statement timeout: 5 seconds. */
export const STATEMENT_TIMEOUT: Duration.Duration = Duration.seconds(5)

/** The default connect timeout: 5 seconds. */
export const CONNECT_TIMEOUT: Duration.Duration = Duration.seconds(5)

/**
 * How long the client waits for a reply beyond `statementTimeout` before it gives up on a
 * statement (the server normally cancels it first, with an error that proves it rolled back).
 */
export const REPLY_GRACE_MILLIS = 1_000

/** Node's timers take at most a signed 32-bit number of milliseconds. */
const MAX_TIMER_MILLIS = 2_147_483_647

/** The failure of options outside their ranges: nothing was done. */
export const invalid = (detail: string) =>
  new StorageUnavailable({ detail: `invalid PostgreSQL storage options: ${detail}` })

/** A duration option in whole milliseconds, at least 1 ms and small enough for a timer with the reply grace added. */
export const millis = (
  name: string,
  input: Duration.DurationInput | undefined,
  fallback: Duration.Duration,
): Effect.Effect<number, StorageUnavailable> =>
  Option.match(Duration.decodeUnknown(input ?? fallback), {
    onNone: () => Effect.fail(invalid(`${name} is not a duration`)),
    onSome: (duration) =>
      Duration.isFinite(duration) && Duration.toMillis(duration) >= 1
        ? Effect.succeed(Math.min(MAX_TIMER_MILLIS - REPLY_GRACE_MILLIS, Math.round(Duration.toMillis(duration))))
        : Effect.fail(invalid(`${name} must be a finite duration of at least 1 ms`)),
  })

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

/** The validated schema and statement timeout. */
export interface Settings {
  readonly schema: string
  /** The schema as a quoted identifier, safe to interpolate. */
  readonly quoted: string
  readonly statementMillis: number
  /** Whether the hot statements run as named prepared statements on the adapter's pool connections. */
  readonly prepared: boolean
}

/**
 * Checks the options shared by every constructor. A schema name must be lower-case letters,
 * digits and `_`, start with a letter or `_`, be at most 63 characters, and not start with `pg_`
 * (PostgreSQL reserves those names: `CREATE SCHEMA` refuses them).
 */
export const settingsOf = (options: {
  readonly schema?: string | undefined
  readonly statementTimeout?: Duration.DurationInput | undefined
  readonly preparedStatements?: boolean | undefined
}): Effect.Effect<Settings, StorageUnavailable> =>
  Effect.gen(function* () {
    const schema = options.schema ?? "creditlock"
    if (!SCHEMA_NAME.test(schema)) {
      return yield* invalid(
        `schema must be lower-case letters, digits and '_', starting with a letter or '_', at most 63 characters; got ${JSON.stringify(schema)}`,
      )
    }
    if (schema.startsWith("pg_")) {
      return yield* invalid(
        `schema must be a name PostgreSQL does not reserve, not starting with 'pg_'; got ${JSON.stringify(schema)}`,
      )
    }
    const statementMillis = yield* millis("statementTimeout", options.statementTimeout, STATEMENT_TIMEOUT)
    const prepared = options.preparedStatements ?? true
    if (typeof prepared !== "boolean") {
      return yield* invalid(`preparedStatements must be true or false, got ${JSON.stringify(prepared)}`)
    }
    return { schema, quoted: `"${schema}"`, statementMillis, prepared }
  })
