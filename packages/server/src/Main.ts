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
 * | `CREDIT_DRAIN_SECONDS` | `5` | on SIGTERM/SIGINT, how long requests in flight may take to finish |
 * | `CREDIT_METRICS_PORT` | none (no metrics listener) | serve `/metrics` (Prometheus text) on this port, apart from the API |
 * | `CREDIT_METRICS_HOST` | `127.0.0.1` | interface of the metrics listener |
 * | `CREDIT_PUBLIC_URL` | derived from each request | the API's public URL, the `servers` entry of the OpenAPI document (http/https) |
 * | `OTEL_EXPORTER_OTLP_ENDPOINT` | none (no tracing) | export spans over OTLP/HTTP to `<it>/v1/traces`; the other `OTEL_*` variables are in `Tracing` |
 * | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | none | the traces URL, used as it is |
 * | `OTEL_SERVICE_NAME` | `creditlock` | the service name of the exported spans |
 * | `LOG_LEVEL` | `info` | `all`, `trace`, `debug`, `info`, `warning`, `error`, `fatal` or `none` |
 *
 * Every line it writes is a JSON object (Effect's `Logger.json`): start-up (the URL, the docs URL,
 * the store and — only when it generated one — the admin token), one line per request (with its
 * `requestId`), errors, and shutdown. Lines at warning and above go to stderr, the others to
 * stdout. SIGINT/SIGTERM stop it gracefully (see `Server.layerServer` of @creditlock/http): readiness
 * turns 503, the listener closes, idle connections close, requests in flight finish within
 * `CREDIT_DRAIN_SECONDS`, then the store is closed and the process exits with status 0. A second
 * signal ends the process at once.
 *
 * @module
 */

import { CreditEngine } from "@creditlock/core"
import { Auth, Server } from "@creditlock/http"
import { HttpServer } from "@effect/platform"
import { Config, ConfigError, Duration, Effect, Either, Layer, Logger, LogLevel, Option, Redacted } from "effect"
import { generateAdminCredential, parseCredentials } from "./Credentials.js"
import * as MetricsListener from "./Metrics.js"
import { DEFAULT_STORE, describeStore, parseStore, type StoreConfig, layer as storeLayer } from "./Store.js"
import * as Tracing from "./Tracing.js"

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
  /** On a stop signal, how long requests in flight may take to finish; default 5. */
  readonly drainSeconds?: number | undefined
  /** Where `/metrics` listens, apart from the API; none: no metrics listener. */
  readonly metrics?: Option.Option<{ readonly host: string; readonly port: number }> | undefined
  /** The API's public URL (the OpenAPI document's `servers`); none: derived from each request. */
  readonly publicUrl?: Option.Option<string> | undefined
  /** Where spans are exported; none: no tracer is installed. */
  readonly tracing?: Option.Option<Tracing.TracingConfig> | undefined
}

const fromEither = <A>(name: string, either: Either.Either<A, string>): Either.Either<A, ConfigError.ConfigError> =>
  Either.mapLeft(either, (message) => ConfigError.InvalidData([name], message))

/**
 * `CREDIT_PUBLIC_URL`: an absolute http(s) URL without credentials, query or fragment; its
 * trailing slashes are dropped (`https://credit.example/` → `https://credit.example`).
 */
const publicUrl = (text: string): Either.Either<string, ConfigError.ConfigError> => {
  const invalid = Either.left(
    ConfigError.InvalidData(
      ["CREDIT_PUBLIC_URL"],
      "must be an absolute http:// or https:// URL without credentials, query or fragment, e.g. https://credit.example.com",
    ),
  )
  let url: URL
  try {
    url = new URL(text.trim())
  } catch {
    return invalid
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return invalid
  if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "" || /[?#]/.test(text)) {
    return invalid
  }
  return Either.right(`${url.origin}${url.pathname.replace(/\/+$/, "")}`)
}

const integer = (name: string, min: number, max: number, fallback: number): Config.Config<number> =>
  Config.integer(name).pipe(
    Config.withDefault(fallback),
    Config.validate({ message: `must be an integer from ${min} to ${max}`, validation: (n) => n >= min && n <= max }),
  )

/** The lowest level logged, from `LOG_LEVEL` (case-insensitive); default `info`. */
export const logLevel: Config.Config<LogLevel.LogLevel> = Config.string("LOG_LEVEL").pipe(
  Config.withDefault("info"),
  Config.mapOrFail((text) => {
    const wanted = text.trim().toLowerCase()
    const level = LogLevel.allLevels.find((l) => l.label.toLowerCase() === wanted || l._tag.toLowerCase() === wanted)
    return level === undefined
      ? Either.left(
          ConfigError.InvalidData(["LOG_LEVEL"], "must be one of all, trace, debug, info, warning, error, fatal, none"),
        )
      : Either.right(level)
  }),
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
  drainSeconds: integer("CREDIT_DRAIN_SECONDS", 0, 3600, 5),
  metrics: Config.all({
    host: Config.string("CREDIT_METRICS_HOST").pipe(Config.withDefault("127.0.0.1")),
    port: Config.option(
      Config.integer("CREDIT_METRICS_PORT").pipe(
        Config.validate({ message: "must be an integer from 0 to 65535", validation: (n) => n >= 0 && n <= 65535 }),
      ),
    ),
  }).pipe(Config.map(({ host, port }) => Option.map(port, (p) => ({ host, port: p })))),
  publicUrl: Config.option(Config.string("CREDIT_PUBLIC_URL")).pipe(
    Config.mapOrFail((text) =>
      Option.match(
        Option.filter(text, (t) => t.trim() !== ""),
        {
          onNone: () => Either.right(Option.none()),
          onSome: (t) => Either.map(publicUrl(t), Option.some),
        },
      ),
    ),
  ),
  tracing: Tracing.config,
})

/** A URL without its user name and password, for logs. */
const describeUrl = (text: string): string => {
  const url = new URL(text)
  url.username = ""
  url.password = ""
  return url.toString()
}

const urlOf = (address: HttpServer.Address): string =>
  address._tag === "UnixAddress"
    ? `unix:${address.path}`
    : `http://${address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname}:${address.port}`

/** The server as a layer built from a configuration; logs where it listens once it does. */
export const layer = (mainConfig: MainConfig) => {
  const generated = Option.isNone(mainConfig.credentials) ? generateAdminCredential() : undefined
  const credentials = Option.getOrElse(mainConfig.credentials, () => (generated === undefined ? [] : [generated]))
  let listened = false
  const announce = Layer.scopedDiscard(
    Effect.gen(function* () {
      const server = yield* HttpServer.HttpServer
      const url = urlOf(server.address)
      listened = true
      yield* Effect.logInfo(`creditlock listening on ${url} (docs: ${url}/docs)`).pipe(
        Effect.annotateLogs({
          url,
          docs: `${url}/docs`,
          openapi: `${url}/openapi.json`,
          store: describeStore(mainConfig.store),
          ...Option.match(mainConfig.tracing ?? Option.none(), {
            onNone: () => ({}),
            onSome: (tracing) => ({ traces: `${describeUrl(tracing.url)} (service ${tracing.serviceName})` }),
          }),
        }),
      )
      if (generated !== undefined) {
        // The one line that shows a token: the operator has no other way to learn it.
        yield* Effect.logWarning(
          "CREDIT_CREDENTIALS is not set; generated an admin token, shown once in adminToken",
        ).pipe(Effect.annotateLogs({ adminToken: Redacted.value(generated.token) }))
      }
      yield* Effect.addFinalizer(() => Effect.logInfo("creditlock stopping: finishing requests in flight"))
    }),
  )
  // A server that never listened (a refusal at start) logs only the refusal.
  const stopped = Layer.scopedDiscard(
    Effect.addFinalizer(() => (listened ? Effect.logInfo("creditlock stopped") : Effect.void)),
  )
  const tracing = Option.match(mainConfig.tracing ?? Option.none(), {
    onNone: () => Layer.empty,
    onSome: Tracing.layer,
  })
  const metrics = Option.match(mainConfig.metrics ?? Option.none(), {
    onNone: () => Layer.empty,
    onSome: (listen) => MetricsListener.layer(listen),
  })
  return Layer.merge(announce, metrics).pipe(
    Layer.provideMerge(
      Server.layerServer({
        host: mainConfig.host,
        port: mainConfig.port,
        credentials,
        rateLimit: { limit: mainConfig.rateLimitPerMinute, window: Duration.minutes(1) },
        drainTimeout: Duration.seconds(mainConfig.drainSeconds ?? 5),
        publicUrl: Option.getOrUndefined(mainConfig.publicUrl ?? Option.none()),
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
    // Built before the store and the server, so that every request fiber has the tracer; released
    // after them, so that the spans of the drained requests are sent before the process ends.
    Layer.provide(tracing),
    Layer.provide(stopped),
  )
}

/** The server program: reads the configuration and serves until interrupted, logging at `LOG_LEVEL`. */
export const main = Effect.flatMap(Effect.all([config, logLevel]), ([mainConfig, level]) =>
  Layer.launch(layer(mainConfig)).pipe(Logger.withMinimumLogLevel(level)),
)
