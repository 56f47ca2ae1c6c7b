/**
 * The server program (`creditlock serve`, `pnpm start` in the repository), configured by
 * environment variables:
 *
 * | variable | default | meaning |
 * | --- | --- | --- |
 * | `HOST` | `127.0.0.1` | interface to listen on |
 * | `PORT` | `8080` | port (0 picks a free one) |
 * | `CREDIT_STORE` | `sqlite:./data/creditlock.sqlite` | storage, see `Store` |
 * | `CREDIT_CREDENTIALS` | one generated admin token, printed once | JSON credentials, see `Credentials` |
 * | `CREDIT_RATE_LIMIT` | `60000` | requests per minute per credential |
 * | `CREDIT_LOCK_TTL_SECONDS` | `120` | lock time-to-live |
 * | `CREDIT_MAX_LOCK_LIFETIME_SECONDS` | 600, or the TTL when longer | a lock's total lifetime with `_extend` |
 * | `CREDIT_LOCK_KEY_SECRET` | random per process | derives the keys of locks granted under an `Idempotency-Key` (32–1024 characters) |
 *
 * On start it prints the URL, the docs URL, the store and — only when it generated one — the admin
 * token. Request logs are JSON lines on stdout. SIGINT/SIGTERM stop it gracefully: no new
 * connections, requests in flight finish, then the store is closed.
 *
 * @module
 */

import { CreditEngine } from "@creditlock/core"
import { Auth, Server } from "@creditlock/http"
import { HttpServer } from "@effect/platform"
import { Config, ConfigError, Console, Duration, Effect, Either, Layer, Option, Redacted } from "effect"
import { generateAdminCredential, parseCredentials } from "./Credentials.js"
import { DEFAULT_STORE, describeStore, parseStore, type StoreConfig, layer as storeLayer } from "./Store.js"

/** Everything the server program is configured with. */
export interface MainConfig {
  readonly host: string
  readonly port: number
  readonly store: StoreConfig
  /** The configured credentials, or none: then one admin credential is generated and printed. */
  readonly credentials: Option.Option<ReadonlyArray<Auth.Credential>>
  readonly rateLimitPerMinute: number
  readonly lockTtlSeconds: number
  /** A lock's total lifetime with extensions; none: the engine's default (10 minutes, or the TTL when longer). */
  readonly maxLockLifetimeSeconds: Option.Option<number>
  /** The secret deriving the keys of locks granted under an `Idempotency-Key`; none: random per process. */
  readonly lockKeySecret: Option.Option<Redacted.Redacted<string>>
}

const fromEither = <A>(name: string, either: Either.Either<A, string>): Either.Either<A, ConfigError.ConfigError> =>
  Either.mapLeft(either, (message) => ConfigError.InvalidData([name], message))

const integer = (name: string, min: number, max: number, fallback: number): Config.Config<number> =>
  Config.integer(name).pipe(
    Config.withDefault(fallback),
    Config.validate({ message: `must be an integer from ${min} to ${max}`, validation: (n) => n >= min && n <= max }),
  )

/** The server program's configuration, read from the environment (`Config`). */
export const config: Config.Config<MainConfig> = Config.all({
  host: Config.string("HOST").pipe(Config.withDefault("127.0.0.1")),
  port: integer("PORT", 0, 65535, 8080),
  store: Config.string("CREDIT_STORE").pipe(
    Config.withDefault(DEFAULT_STORE),
    Config.mapOrFail((text) => fromEither("CREDIT_STORE", parseStore(text))),
  ),
  credentials: Config.option(Config.redacted("CREDIT_CREDENTIALS")).pipe(
    Config.mapOrFail((text) =>
      Option.match(text, {
        onNone: () => Either.right(Option.none()),
        onSome: (json) =>
          Redacted.value(json).trim() === ""
            ? Either.right(Option.none())
            : Either.map(fromEither("CREDIT_CREDENTIALS", parseCredentials(Redacted.value(json))), Option.some),
      }),
    ),
  ),
  rateLimitPerMinute: integer("CREDIT_RATE_LIMIT", 1, 1_000_000_000, Auth.DEFAULT_RATE_LIMIT.limit),
  lockTtlSeconds: integer("CREDIT_LOCK_TTL_SECONDS", 1, 86_400, 120),
  maxLockLifetimeSeconds: Config.option(
    Config.integer("CREDIT_MAX_LOCK_LIFETIME_SECONDS").pipe(
      Config.validate({ message: "must be an integer from 1 to 86400", validation: (n) => n >= 1 && n <= 86_400 }),
    ),
  ),
  lockKeySecret: Config.option(
    Config.redacted("CREDIT_LOCK_KEY_SECRET").pipe(
      Config.validate({
        message: "must be 32 to 1024 characters",
        validation: (secret) => Redacted.value(secret).length >= 32 && Redacted.value(secret).length <= 1024,
      }),
    ),
  ),
})

const urlOf = (address: HttpServer.Address): string =>
  address._tag === "UnixAddress"
    ? `unix:${address.path}`
    : `http://${address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname}:${address.port}`

/** The server as a layer built from a configuration; prints where it listens once it does. */
export const layer = (mainConfig: MainConfig) => {
  const generated = Option.isNone(mainConfig.credentials) ? generateAdminCredential() : undefined
  const credentials = Option.getOrElse(mainConfig.credentials, () => (generated === undefined ? [] : [generated]))
  const announce = Layer.scopedDiscard(
    Effect.gen(function* () {
      const server = yield* HttpServer.HttpServer
      const url = urlOf(server.address)
      yield* Console.log(`creditlock listening on ${url}`)
      yield* Console.log(`API docs: ${url}/docs (OpenAPI: ${url}/openapi.json)`)
      yield* Console.log(`store: ${describeStore(mainConfig.store)}`)
      if (generated !== undefined) {
        yield* Console.log(
          `CREDIT_CREDENTIALS is not set; generated admin token (shown once): ${Redacted.value(generated.token)}`,
        )
      }
      yield* Effect.addFinalizer(() => Console.log("creditlock stopping: finishing requests in flight"))
    }),
  )
  return announce.pipe(
    Layer.provideMerge(
      Server.layerServer({
        host: mainConfig.host,
        port: mainConfig.port,
        credentials,
        rateLimit: { limit: mainConfig.rateLimitPerMinute, window: Duration.minutes(1) },
      }),
    ),
    Layer.provide(
      CreditEngine.layer({
        lockTtl: Duration.seconds(mainConfig.lockTtlSeconds),
        ...Option.match(mainConfig.maxLockLifetimeSeconds, {
          onNone: () => ({}),
          onSome: (seconds) => ({ maxLockLifetime: Duration.seconds(seconds) }),
        }),
        ...Option.match(mainConfig.lockKeySecret, {
          onNone: () => ({}),
          onSome: (lockKeySecret) => ({ lockKeySecret }),
        }),
      }),
    ),
    Layer.provide(storeLayer(mainConfig.store)),
  )
}

/** The server program: reads the configuration and serves until interrupted. */
export const main = Effect.flatMap(config, (mainConfig) => Layer.launch(layer(mainConfig)))
