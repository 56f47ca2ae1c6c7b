/**
 * The `creditlock` command line: `creditlock serve` (or `creditlock` alone) runs the server,
 * configured by the environment (see `Main`); `creditlock help` prints the usage. Anything else is
 * a usage error.
 *
 * @module
 */
import { HttpServerError } from "@effect/platform"
import { Cause, ConfigError, Effect, Option } from "effect"
import { main } from "./Main.js"
import { AdapterNotInstalled } from "./Store.js"
import { TracingNotInstalled } from "./Tracing.js"

/** What a command line asks for. */
export type Command =
  | { readonly _tag: "Serve" }
  | { readonly _tag: "Help" }
  | { readonly _tag: "UsageError"; readonly message: string }

/** The usage text, printed by `creditlock help` and after a usage error. */
export const usage = `Usage: creditlock [serve]

Commands:
  serve   serve the creditlock HTTP API (the default)
  help    print this text

Configuration (environment):
  HOST                      interface to listen on (default 127.0.0.1)
  PORT                      port; 0 picks a free one (default 8080)
  CREDIT_STORE              sqlite:<path> (default sqlite:./data/creditlock.sqlite), memory:,
                            redis://host:port, redis-cluster://host:port,host:port,
                            postgres://user@host:port/database
  CREDIT_CREDENTIALS        JSON array of { "token", "username"?, "customers": ["*" | id, …] }
                            (default: one generated admin token, printed once)
  CREDIT_RATE_LIMIT         requests per minute per credential (default 60000)
  CREDIT_LOCK_TTL_SECONDS   lock time-to-live in seconds (default 120)
  CREDIT_MAX_LOCK_LIFETIME_SECONDS
                            a lock's total lifetime with extensions (default 600, or the TTL)
  CREDIT_LOCK_KEY_SECRET    32–1024 characters deriving the keys of locks granted under an
                            Idempotency-Key; the same in every process (default: random per process)
  CREDIT_DRAIN_SECONDS      on SIGTERM/SIGINT, how long requests in flight may take (default 5)
  CREDIT_METRICS_PORT       serve /metrics (Prometheus text) on this port, apart from the API
                            (default: no metrics listener)
  CREDIT_METRICS_HOST       interface of the metrics listener (default 127.0.0.1)
  CREDIT_PUBLIC_URL         the API's public URL, the servers entry of the OpenAPI document
                            (default: derived from each request's Host)
  OTEL_EXPORTER_OTLP_ENDPOINT
                            export spans over OTLP/HTTP to <it>/v1/traces (needs
                            @effect/opentelemetry; default: no tracing); also
                            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_SERVICE_NAME (default
                            creditlock), OTEL_EXPORTER_OTLP_PROTOCOL (http/json), _HEADERS
  LOG_LEVEL                 all, trace, debug, info, warning, error, fatal or none (default info)
`

/** Reads the arguments after the program name. */
export const parse = (args: ReadonlyArray<string>): Command => {
  const [first, ...rest] = args
  if (first === undefined || first === "serve") {
    return rest.length === 0
      ? { _tag: "Serve" }
      : { _tag: "UsageError", message: `creditlock serve takes no arguments (got ${rest.join(" ")})` }
  }
  if (first === "help" || first === "--help" || first === "-h") return { _tag: "Help" }
  return { _tag: "UsageError", message: `unknown command: ${first}` }
}

/** A Node system error's code, address and port, when it has them. */
const systemError = (u: unknown): { code?: string; address?: string; port?: number } =>
  typeof u === "object" && u !== null ? (u as { code?: string; address?: string; port?: number }) : {}

/**
 * A failure a person can act on without a stack trace: the configuration, a missing adapter, or
 * an address the server cannot listen on (named as host:port).
 */
const refusal = (error: unknown): Option.Option<string> => {
  if (ConfigError.isConfigError(error)) return Option.some(`invalid configuration: ${String(error)}`)
  if (error instanceof AdapterNotInstalled || error instanceof TracingNotInstalled) return Option.some(error.message)
  if (error instanceof HttpServerError.ServeError) {
    const { code, address, port } = systemError(error.cause)
    const where =
      address === undefined ? "the configured address" : `${address.includes(":") ? `[${address}]` : address}:${port}`
    const why =
      code === "EADDRINUSE"
        ? "the address is already in use (another process listens there; choose another PORT or stop it)"
        : code === "EACCES"
          ? "permission denied (ports below 1024 need privileges)"
          : code === "EADDRNOTAVAIL"
            ? "the address is not available on this machine (check HOST)"
            : String(systemError(error.cause).code ?? error.cause)
    return Option.some(`cannot listen on ${where}: ${why}`)
  }
  return Option.none()
}

/**
 * `creditlock serve`: the server program, whose refusals at start (invalid configuration, an adapter
 * that is not installed, an address it cannot listen on) are logged as one error line without a
 * stack trace; any other failure is logged with its cause. Interruption (SIGINT/SIGTERM) is a clean
 * stop and reports nothing.
 */
export const serve: Effect.Effect<void, unknown> = main.pipe(
  Effect.tapErrorCause((cause) => {
    if (Cause.isInterruptedOnly(cause)) return Effect.void
    return Option.match(Option.flatMap(Cause.failureOption(cause), refusal), {
      onNone: () => Effect.logError("creditlock: stopped by an unexpected failure", cause),
      onSome: (line) => Effect.logError(`creditlock: ${line}`),
    })
  }),
)
