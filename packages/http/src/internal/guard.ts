/**
 * The outermost middleware of the API: reads and checks the request body before any route sees it,
 * turns every failure into a problem response, and writes one structured log line per request.
 *
 * The body is read here, once, within the size limit (from the stream, or — behind a body parser
 * that read the stream first — from the parser's `req.body`, encoded again; see `preParsed`), and
 * handed to the routes as already-parsed data: whatever a client sends (invalid JSON, JSON nested more than 64 levels deep, invalid UTF-8,
 * a media type no route accepts, an oversize or unreadable body, malformed percent-encoding in the
 * path) ends as a 4xx problem, never as a defect. This happens before authentication, so it holds
 * for every caller, with or without a valid credential. Defects end as a 500 problem that says
 * nothing about them; they are logged.
 *
 * The public documents (`GET /docs`, `GET /openapi.json`) pass the public rate limit first (see
 * `Auth.Access`), and are answered with their `servers` entry, ETag and compression (`documents`).
 * The route template of every request is set on the current span as `http.route`.
 *
 * @module
 * @internal
 */

import { IncomingMessage } from "node:http"
import { InvalidRequest, type RateLimited } from "@creditlock/core"
import { HttpApi, type HttpApp, HttpMethod, HttpServerRequest, HttpServerResponse, UrlParams } from "@effect/platform"
import { Cause, Clock, Effect, Metric, MetricKey, type MetricKeyType, MetricLabel, Option, Stream } from "effect"
import {
  InternalError,
  isProblemLike,
  PayloadTooLarge,
  type ProblemLike,
  problemResponse,
  RouteNotFound,
  UnsupportedMediaType,
} from "../Problem.js"
import { type DocumentOptions, makeDocuments } from "./documents.js"
import { exceedsJsonDepth, JSON_DEPTH_DETAIL, MAX_JSON_DEPTH } from "./jsonDepth.js"
import { keys as metricKeys } from "./metricKeys.js"
import { bodyReadBefore } from "./preParsed.js"

/** How the guard behaves. */
export interface GuardOptions {
  /** The largest accepted request body, in bytes. */
  readonly maxBodyBytes: number
  /** `Retry-After` seconds sent with every 503 (storage unavailable, outcome unknown, unlock incomplete). */
  readonly storageRetryAfterSeconds: number
  /** Whether to log one line per request. */
  readonly logRequests: boolean
  /** The route template a request matched, for logs (ids stay out of the route name). */
  readonly routeOf: (method: string, pathname: string) => string
  /** The rate limit of the public documents; none: they are not limited. */
  readonly limitPublic?:
    | ((request: HttpServerRequest.HttpServerRequest) => Effect.Effect<void, RateLimited>)
    | undefined
  /** Where the documents say the API is (their `servers` entry). */
  readonly documents?: DocumentOptions | undefined
}

/** Whether a request asks for one of the public documents. */
const isDocument = (request: HttpServerRequest.HttpServerRequest): boolean => {
  if (request.method !== "GET") return false
  const path = pathOf(request.url)
  return path === "/docs" || path === "/openapi.json"
}

/**
 * An oversize body is read to its end and discarded (nothing beyond the limit is kept), so the
 * client receives its 413 instead of a reset connection; only beyond this multiple of the limit
 * (64 MiB with the default 64 KiB) does reading stop and the connection drop.
 */
const DRAIN_FACTOR = 1024

const jsonMedia = "application/json"
const formMedia = "application/x-www-form-urlencoded"

const issuesDetail = (
  issues: ReadonlyArray<{ readonly path: ReadonlyArray<PropertyKey>; readonly message: string }>,
) => {
  const text = issues
    .map((issue) => (issue.path.length > 0 ? `${issue.path.map(String).join(".")}: ${issue.message}` : issue.message))
    .join("; ")
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text
}

const hasTag = (u: unknown, tag: string): boolean =>
  typeof u === "object" && u !== null && "_tag" in u && (u as { _tag: unknown })._tag === tag

/** The problem a typed failure of a route (or of the router) stands for; `undefined` for a defect. */
const problemOf = (error: unknown, request: HttpServerRequest.HttpServerRequest): ProblemLike | undefined => {
  if (isProblemLike(error)) return error
  if (hasTag(error, "HttpApiDecodeError")) {
    const { issues } = error as unknown as {
      issues: ReadonlyArray<{ readonly path: ReadonlyArray<PropertyKey>; readonly message: string }>
    }
    return new InvalidRequest({ detail: issuesDetail(issues) })
  }
  if (hasTag(error, "RouteNotFound")) {
    return new RouteNotFound({ detail: `no route for ${request.method} ${pathOf(request.url)}` })
  }
  if (hasTag(error, "RequestError")) return new InvalidRequest({ detail: "the request could not be read" })
  return undefined
}

const pathOf = (url: string): string => {
  const end = url.search(/[?#]/)
  return end === -1 ? url : url.slice(0, end)
}

const mediaType = (contentType: string | undefined): string | undefined =>
  contentType === undefined ? undefined : (contentType.split(";")[0] ?? "").trim().toLowerCase()

/** The request with its body replaced by bytes already read: every body accessor answers from them. */
const withBody = (
  request: HttpServerRequest.HttpServerRequest,
  bytes: Uint8Array,
  text: string,
  json: unknown,
): HttpServerRequest.HttpServerRequest => {
  const copy = Object.create(request) as HttpServerRequest.HttpServerRequest
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
  Object.defineProperties(copy, {
    text: { get: () => Effect.succeed(text) },
    json: { get: () => Effect.succeed(json) },
    urlParamsBody: { get: () => Effect.succeed(UrlParams.fromInput(new URLSearchParams(text))) },
    arrayBuffer: { get: () => Effect.succeed(buffer) },
    stream: { get: () => Stream.succeed(bytes) },
  })
  return copy
}

const concat = (chunks: ReadonlyArray<Uint8Array>, size: number): Uint8Array => {
  const out = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}

const tooLarge = (max: number) => new PayloadTooLarge({ detail: `the request body exceeds ${max} bytes` })

/**
 * Reads the whole body within `max` bytes — from the stream, or, when middleware read the stream
 * first (a body parser in front of a mounted API), from what it left in `req.body`.
 */
const readBody = (
  request: HttpServerRequest.HttpServerRequest,
  max: number,
  media: string | undefined,
): Effect.Effect<Uint8Array, InvalidRequest | PayloadTooLarge | InternalError> =>
  Effect.gen(function* () {
    const declared = request.headers["content-length"]
    if (declared !== undefined) {
      if (!/^\d{1,15}$/.test(declared.trim())) {
        return yield* new InvalidRequest({ detail: "the Content-Length header is not a byte count" })
      }
      if (Number(declared) > max) return yield* tooLarge(max)
    }
    // A Fetch API request without a body has no stream at all (rather than an empty one).
    if (request.source instanceof Request && request.source.body === null) return new Uint8Array(0)
    const before = bodyReadBefore(request.source, media)
    if (before !== undefined) {
      if (before._tag === "Refused") {
        if (before.error._tag === "InternalError") yield* Effect.logError(before.error.detail)
        return yield* before.error
      }
      if (before.bytes.length > max) return yield* tooLarge(max)
      return before.bytes
    }
    const chunks: Array<Uint8Array> = []
    let size = 0
    const take = (chunk: Uint8Array): boolean => {
      size += chunk.length
      if (size <= max) chunks.push(chunk)
      return size <= max * DRAIN_FACTOR
    }
    if (request.source instanceof IncomingMessage) yield* readIncoming(request.source, take)
    else {
      yield* request.stream.pipe(
        Stream.runForEachWhile((chunk) => Effect.sync(() => take(chunk))),
        Effect.mapError(unreadable),
      )
    }
    if (size > max) return yield* tooLarge(max)
    return concat(chunks, size)
  })

/** Label sets kept at most; beyond, a metric is made per request (same series, no cache). */
const MAX_CACHED = 1_000

/**
 * The metric of `key` with its labels named `names` set to the values given, made once per label
 * set and kept: a metric tagged per call builds and hashes a new key on every update, a cost on
 * every request. The values are few (methods, route templates, statuses); the cache is bounded
 * all the same.
 */
const labelled = <Type extends MetricKeyType.MetricKeyType<number, unknown>>(
  key: MetricKey.MetricKey<Type>,
  ...names: ReadonlyArray<string>
) => {
  const made = new Map<string, Metric.Metric<Type, number, unknown>>()
  return (...values: ReadonlyArray<string>): Metric.Metric<Type, number, unknown> => {
    const id = values.join("\u0000")
    const cached = made.get(id)
    if (cached !== undefined) return cached
    const tagged = MetricKey.taggedWithLabels(
      key,
      names.map((name, i) => MetricLabel.make(name, values[i] ?? "")),
    )
    const metric = Metric.fromMetricKey(tagged) as unknown as Metric.Metric<Type, number, unknown>
    if (made.size < MAX_CACHED) made.set(id, metric)
    return metric
  }
}

const requestsBy = labelled(metricKeys.requests, "method", "route", "status")
const durationBy = labelled(metricKeys.requestDuration, "method", "route")

const unreadable = () => new InvalidRequest({ detail: "the request body could not be read" })

/**
 * Reads a node:http request's body with its own events — the same chunks the platform's stream
 * would give, without a stream and a channel per request, which cost more than the rest of a small
 * request's handling. `take` answers whether to go on; when it says stop, the request is
 * destroyed (the connection drops, as when the platform's stream is stopped). A request that
 * fails or closes before its end is unreadable. Interrupted, the listeners are removed.
 */
const readIncoming = (
  source: IncomingMessage,
  take: (chunk: Uint8Array) => boolean,
): Effect.Effect<void, InvalidRequest> =>
  Effect.async<void, InvalidRequest>((resume) => {
    let settled = false
    const onData = (chunk: Uint8Array) => {
      if (settled || take(chunk)) return
      settle(Effect.void)
      source.destroy()
    }
    const onEnd = () => settle(Effect.void)
    const onFailure = () => settle(Effect.fail(unreadable()))
    const onClose = () => {
      if (!source.complete) onFailure()
    }
    const detach = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onFailure)
      source.off("close", onClose)
    }
    const settle = (outcome: Effect.Effect<void, InvalidRequest>) => {
      if (settled) return
      settled = true
      detach()
      resume(outcome)
    }
    if (source.readableEnded) return resume(Effect.void)
    source.on("data", onData)
    source.on("end", onEnd)
    source.on("error", onFailure)
    source.on("close", onClose)
    return Effect.sync(detach)
  })

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false })

/** Reads, checks and parses the body; the request the routes see answers from the parsed body. */
const prepare = (
  request: HttpServerRequest.HttpServerRequest,
  options: GuardOptions,
): Effect.Effect<
  HttpServerRequest.HttpServerRequest,
  InvalidRequest | PayloadTooLarge | UnsupportedMediaType | InternalError
> =>
  Effect.gen(function* () {
    const path = pathOf(request.url)
    try {
      decodeURIComponent(path)
    } catch {
      return yield* new InvalidRequest({ detail: "the path is not valid percent-encoding" })
    }
    // The router would fold "a//b" into "a/b", turning an empty id into a different route.
    if (path !== "/" && path.split("/").slice(1).includes("")) {
      return yield* new InvalidRequest({ detail: "the path has an empty segment" })
    }
    if (!HttpMethod.hasBody(request.method)) return request
    const media = mediaType(request.headers["content-type"])
    const bytes = yield* readBody(request, options.maxBodyBytes, media)
    if (bytes.length === 0) return withBody(request, bytes, "", {})
    if (media === undefined) {
      return yield* new UnsupportedMediaType({
        detail: `the body has no Content-Type: send Content-Type: ${jsonMedia} (or ${formMedia} where documented)`,
      })
    }
    if (media !== jsonMedia && media !== formMedia) {
      return yield* new UnsupportedMediaType({
        detail: `the body must be ${jsonMedia} (or ${formMedia} where documented), got ${JSON.stringify(media.slice(0, 100))}`,
      })
    }
    let text: string
    try {
      text = utf8.decode(bytes)
    } catch {
      return yield* new InvalidRequest({ detail: "the body is not valid UTF-8" })
    }
    if (media === formMedia) return withBody(request, bytes, text, {})
    // Checked on the text, before parsing: decoding a value and formatting its errors recurse
    // into it, so a deeply nested one would overflow the stack; the scan is a plain loop.
    if (exceedsJsonDepth(text, MAX_JSON_DEPTH)) {
      return yield* new InvalidRequest({ detail: JSON_DEPTH_DETAIL })
    }
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      return yield* new InvalidRequest({ detail: "the body is not valid JSON" })
    }
    return withBody(request, bytes, text, json)
  })

/** A client's `X-Request-Id` is kept when it is 1–128 of these characters; otherwise one is generated. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** The request's id: the client's `X-Request-Id` when valid, else a new random one. */
export const requestIdOf = (request: HttpServerRequest.HttpServerRequest): string => {
  const given = request.headers["x-request-id"]
  return given !== undefined && REQUEST_ID.test(given) ? given : globalThis.crypto.randomUUID()
}

/** The name of the header that carries the request id, in requests and responses. */
export const REQUEST_ID_HEADER = "x-request-id"

/**
 * The guard as an `HttpApp` middleware. Every log line written while serving a request carries
 * its `requestId`, and every response its `X-Request-Id` header.
 */
export const guard = (options: GuardOptions) => {
  const documentResponse = makeDocuments(options.documents)
  return (app: HttpApp.Default): HttpApp.Default =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const requestId = requestIdOf(request)
      const answered = yield* guarded(options, app, request).pipe(Effect.annotateLogs({ requestId }))
      const response = isDocument(request) ? documentResponse(request, answered) : answered
      return HttpServerResponse.setHeader(response, REQUEST_ID_HEADER, requestId)
    })
}

const guarded = (
  options: GuardOptions,
  app: HttpApp.Default,
  request: HttpServerRequest.HttpServerRequest,
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.gen(function* () {
    const started = yield* Clock.currentTimeMillis
    const respond = (error: ProblemLike) => problemResponse(error, options.storageRetryAfterSeconds)
    const limited =
      options.limitPublic !== undefined && isDocument(request) ? options.limitPublic(request) : Effect.void
    const response: HttpServerResponse.HttpServerResponse = yield* limited.pipe(
      Effect.zipRight(prepare(request, options)),
      Effect.flatMap((prepared) => Effect.provideService(app, HttpServerRequest.HttpServerRequest, prepared)),
      Effect.catchAllCause((cause) => {
        const failure = Cause.failureOption(cause)
        const problem = Option.isSome(failure) ? problemOf(failure.value, request) : undefined
        if (problem !== undefined) return Effect.succeed(respond(problem))
        // The client went away (or the server is stopping): there is nobody to answer.
        if (Option.isNone(failure) && Cause.isInterruptedOnly(cause)) return Effect.interrupt
        // A defect, or a failure nothing declared: log it here, answer without internals.
        return Effect.as(
          Effect.logError("unexpected failure while handling a request", cause),
          respond(new InternalError({ detail: "an unexpected error occurred; it has been logged" })),
        )
      }),
    )
    const finished = yield* Clock.currentTimeMillis
    const route = options.routeOf(request.method, pathOf(request.url))
    yield* annotateRoute(route)
    yield* Metric.update(requestsBy(request.method, route, String(response.status)), 1)
    yield* Metric.update(durationBy(request.method, route), (finished - started) / 1000)
    if (options.logRequests) {
      yield* Effect.logInfo("request").pipe(
        Effect.annotateLogs({
          method: request.method,
          route,
          status: response.status,
          durationMs: finished - started,
        }),
      )
    }
    return response
  })

/** Sets `http.route` on the request's span (the server's, when a tracer is installed); nothing without one. */
const annotateRoute = (route: string): Effect.Effect<void> =>
  Effect.flatMap(Effect.option(Effect.currentSpan), (span) =>
    Effect.sync(() => {
      if (Option.isSome(span)) span.value.attribute("http.route", route)
    }),
  )

/**
 * The route templates of an API (plus extra routes such as `/docs`), as a function from a method
 * and a path to the template that matches it, or `"(unmatched)"`.
 */
export const routeTemplates = (
  api: HttpApi.HttpApi.Any,
  extra: ReadonlyArray<readonly [method: string, path: string]>,
): ((method: string, pathname: string) => string) => {
  const routes: Array<{ readonly method: string; readonly template: string; readonly pattern: RegExp }> = []
  const add = (method: string, template: string) => {
    const source = template
      .split("/")
      .map((segment) => (segment.startsWith(":") ? "[^/]+" : segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
      .join("/")
    routes.push({ method, template, pattern: new RegExp(`^${source}$`) })
  }
  HttpApi.reflect(api as HttpApi.HttpApi.AnyWithProps, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => add(endpoint.method, endpoint.path),
  })
  for (const [method, path] of extra) add(method, path)
  return (method, pathname) =>
    routes.find((route) => route.method === method && route.pattern.test(pathname))?.template ?? "(unmatched)"
}
