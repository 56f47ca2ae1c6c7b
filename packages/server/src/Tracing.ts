/**
 * Tracing over OTLP/HTTP, configured by the OpenTelemetry environment variables:
 *
 * | variable | default | meaning |
 * | --- | --- | --- |
 * | `OTEL_EXPORTER_OTLP_ENDPOINT` | none (no tracing) | the collector's base URL; spans go to `<it>/v1/traces` |
 * | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | none | the traces URL, used as it is (takes precedence) |
 * | `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` | `http/json` | `http/json` or `http/protobuf` |
 * | `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TRACES_HEADERS` | none | `name=value,…` sent with every export (kept out of logs) |
 * | `OTEL_SERVICE_NAME` | `creditlock` | `service.name` of the resource |
 * | `OTEL_BSP_SCHEDULE_DELAY` | `5000` | milliseconds between two exports (1–3,600,000) |
 * | `OTEL_RESOURCE_ATTRIBUTES` | none | `key=value,…` added to the resource |
 * | `OTEL_SDK_DISABLED` | `false` | `true` turns tracing off whatever else is set |
 *
 * With neither endpoint set, no tracer is installed at all: Effect's default tracer stays, and the
 * engine makes no spans. With one set, the exporter of `@effect/opentelemetry` (`OtlpTracer`, over
 * `@effect/platform`'s fetch client — not the OpenTelemetry SDK) is installed: one span per HTTP
 * request (kind server, `http.request.method`, `http.route`, `http.response.status_code`), the
 * engine's operation spans as its children, a parent taken from an incoming `traceparent`. Spans
 * are sent in batches (every 5 seconds by default) and once more when the server stops, after the drain (that
 * last export waits at most {@link FLUSH_TIMEOUT}).
 *
 * `@effect/opentelemetry` is an optional peer dependency, imported only when tracing is configured;
 * configured without it, the server refuses to start with {@link TracingNotInstalled}.
 *
 * @module
 */
import { FetchHttpClient } from "@effect/platform"
import { Config, ConfigError, Duration, Effect, Either, Layer, Option, Redacted, Schema } from "effect"
import { isPackageNotFound } from "./internal/importAdapter.js"

/** How spans are encoded on the wire. */
export type OtlpProtocol = "http/json" | "http/protobuf"

/** Where and how spans are exported. */
export interface TracingConfig {
  /** The URL spans are posted to (`…/v1/traces`). */
  readonly url: string
  readonly protocol: OtlpProtocol
  /** Headers sent with every export (an API key of a hosted collector, …). */
  readonly headers: Redacted.Redacted<Readonly<Record<string, string>>>
  readonly serviceName: string
  /** Time between two exports; default 5 seconds. */
  readonly exportInterval?: Duration.Duration | undefined
}

/** The service name when `OTEL_SERVICE_NAME` is not set. */
export const DEFAULT_SERVICE_NAME = "creditlock"

/** How long the last export, when the server stops, may take. */
export const FLUSH_TIMEOUT: Duration.Duration = Duration.seconds(2)

/** An http(s) URL, or a message saying what is wrong with `text`. */
const httpUrl = (name: string, text: string): Either.Either<URL, ConfigError.ConfigError> => {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return Either.left(ConfigError.InvalidData([name], "must be an absolute http:// or https:// URL"))
  }
  return url.protocol === "http:" || url.protocol === "https:"
    ? Either.right(url)
    : Either.left(ConfigError.InvalidData([name], "must be an absolute http:// or https:// URL"))
}

/** The traces URL of a base endpoint, as the OpenTelemetry specification says: `<base>/v1/traces`. */
export const tracesUrl = (base: URL): string => {
  const url = new URL(base)
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/v1/traces`
  return url.toString()
}

/** A variable that counts as unset when empty (as OpenTelemetry's variables do). */
const optionalText = (name: string): Config.Config<Option.Option<string>> =>
  Config.option(Config.string(name)).pipe(Config.map(Option.filter((text) => text.trim() !== "")))

/** `name=value,…` with percent-encoded values, as `OTEL_EXPORTER_OTLP_HEADERS` holds them. */
const parseHeaders = (name: string, text: string): Either.Either<Record<string, string>, ConfigError.ConfigError> => {
  const headers: Record<string, string> = {}
  for (const part of text.split(",")) {
    if (part.trim() === "") continue
    const at = part.indexOf("=")
    const key = at < 0 ? "" : part.slice(0, at).trim().toLowerCase()
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(key)) {
      return Either.left(ConfigError.InvalidData([name], "must be name=value pairs separated by commas"))
    }
    let value: string
    try {
      value = decodeURIComponent(part.slice(at + 1).trim())
    } catch {
      return Either.left(ConfigError.InvalidData([name], `the value of ${key} is not valid percent-encoding`))
    }
    headers[key] = value
  }
  return Either.right(headers)
}

const protocol = (name: string): Config.Config<Option.Option<OtlpProtocol>> =>
  optionalText(name).pipe(
    Config.mapOrFail((text) =>
      Option.match(text, {
        onNone: () => Either.right(Option.none()),
        onSome: (value) =>
          value.trim() === "http/json" || value.trim() === "http/protobuf"
            ? Either.right(Option.some(value.trim() as OtlpProtocol))
            : Either.left(
                ConfigError.InvalidData([name], "must be http/json or http/protobuf (grpc is not supported)"),
              ),
      }),
    ),
  )

const headers = (name: string): Config.Config<Option.Option<Redacted.Redacted<Record<string, string>>>> =>
  Config.option(Config.redacted(name)).pipe(
    Config.mapOrFail((text) =>
      Option.match(
        Option.filter(text, (t) => Redacted.value(t).trim() !== ""),
        {
          onNone: () => Either.right(Option.none()),
          onSome: (t) => Either.map(parseHeaders(name, Redacted.value(t)), (h) => Option.some(Redacted.make(h))),
        },
      ),
    ),
  )

/** The tracing configuration from the environment; none when no endpoint is set (or `OTEL_SDK_DISABLED=true`). */
export const config: Config.Config<Option.Option<TracingConfig>> = Config.all({
  disabled: Config.boolean("OTEL_SDK_DISABLED").pipe(Config.withDefault(false)),
  base: optionalText("OTEL_EXPORTER_OTLP_ENDPOINT").pipe(
    Config.mapOrFail((text) =>
      Option.match(text, {
        onNone: () => Either.right(Option.none()),
        onSome: (t) => Either.map(httpUrl("OTEL_EXPORTER_OTLP_ENDPOINT", t.trim()), (u) => Option.some(tracesUrl(u))),
      }),
    ),
  ),
  traces: optionalText("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").pipe(
    Config.mapOrFail((text) =>
      Option.match(text, {
        onNone: () => Either.right(Option.none()),
        onSome: (t) =>
          Either.map(httpUrl("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", t.trim()), (u) => Option.some(u.toString())),
      }),
    ),
  ),
  protocol: protocol("OTEL_EXPORTER_OTLP_PROTOCOL"),
  tracesProtocol: protocol("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
  headers: headers("OTEL_EXPORTER_OTLP_HEADERS"),
  tracesHeaders: headers("OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
  delay: Config.integer("OTEL_BSP_SCHEDULE_DELAY").pipe(
    Config.withDefault(5000),
    Config.validate({
      message: "must be an integer from 1 to 3600000 (milliseconds)",
      validation: (n) => n >= 1 && n <= 3_600_000,
    }),
  ),
  serviceName: optionalText("OTEL_SERVICE_NAME").pipe(
    Config.map(Option.getOrElse(() => DEFAULT_SERVICE_NAME)),
    Config.map((name) => name.trim()),
  ),
}).pipe(
  Config.map((c) =>
    c.disabled
      ? Option.none()
      : Option.map(
          Option.orElse(c.traces, () => c.base),
          (url) => ({
            url,
            protocol: Option.getOrElse(
              Option.orElse(c.tracesProtocol, () => c.protocol),
              () => "http/json" as const,
            ),
            headers: Redacted.make({
              ...Option.match(c.headers, { onNone: () => ({}), onSome: Redacted.value }),
              ...Option.match(c.tracesHeaders, { onNone: () => ({}), onSome: Redacted.value }),
            }),
            serviceName: c.serviceName,
            exportInterval: Duration.millis(c.delay),
          }),
        ),
  ),
)

/**
 * Tracing is configured, but `@effect/opentelemetry` (an optional peer dependency) is not
 * installed. The message names the package and the command that installs it.
 */
export class TracingNotInstalled extends Schema.TaggedError<TracingNotInstalled>()("TracingNotInstalled", {}) {
  override get message(): string {
    return (
      "OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, which needs the package " +
      "@effect/opentelemetry, which is not installed. Install it next to @creditlock/server " +
      "(npm install @effect/opentelemetry, or pnpm add @effect/opentelemetry), or unset the variable."
    )
  }
}

/** `@effect/opentelemetry` could not be loaded for another reason than its absence (a broken install). */
export class TracingUnavailable extends Schema.TaggedError<TracingUnavailable>()("TracingUnavailable", {
  cause: Schema.Defect,
}) {
  override get message(): string {
    return "could not load @effect/opentelemetry"
  }
}

const load = <A>(loader: () => Promise<A>): Effect.Effect<A, TracingNotInstalled | TracingUnavailable> =>
  Effect.tryPromise({
    try: loader,
    catch: (cause) =>
      isPackageNotFound(cause, "@effect/opentelemetry") ? new TracingNotInstalled() : new TracingUnavailable({ cause }),
  })

/**
 * The OTLP tracer as a layer: provide it to the server so that every request and engine operation
 * is traced. Releasing it sends the spans still buffered (within {@link FLUSH_TIMEOUT}).
 */
export const layer = (tracing: TracingConfig): Layer.Layer<never, TracingNotInstalled | TracingUnavailable> =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const [OtlpTracer, Serialization] = yield* Effect.all([
        load(() => import("@effect/opentelemetry/OtlpTracer")),
        load(() => import("@effect/opentelemetry/OtlpSerialization")),
      ])
      return OtlpTracer.layer({
        url: tracing.url,
        resource: { serviceName: tracing.serviceName },
        headers: Redacted.value(tracing.headers),
        exportInterval: tracing.exportInterval ?? Duration.seconds(5),
        shutdownTimeout: FLUSH_TIMEOUT,
      }).pipe(
        Layer.provide(tracing.protocol === "http/protobuf" ? Serialization.layerProtobuf : Serialization.layerJson),
        Layer.provide(FetchHttpClient.layer),
      )
    }),
  )
