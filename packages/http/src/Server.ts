/**
 * Serving the API: as a standalone Node server, or mounted in an existing server as a web handler
 * (`Request` → `Response`) or a `node:http` handler.
 *
 * Every form serves the same routes: the API, `GET /openapi.json` (generated from the API
 * definition) and `GET /docs` (Swagger UI), behind the same guard (64 KiB body limit, problem
 * responses, one structured log line per request: method, route template, status, duration —
 * never a header, a token or a lock key). Mounted behind a body parser that read the request
 * stream first (Express's `express.json()`, …), the node:http handlers use what it left in
 * `req.body`, checked like a body they read themselves.
 *
 * The documents need no credential but count against the rate limit: by the credential a request
 * presents, otherwise by its remote address (see `Auth`). Their `servers` entry is
 * `publicUrl` when given, otherwise derived from the request (see {@link ApiOptions.publicUrl}).
 *
 * Under a tracer (e.g. `@effect/opentelemetry`'s), each request has a server span with
 * `http.route` (named `<method> <route template>` by {@link layerServer}, `http.server <method>`
 * when mounted); the header names in {@link REDACTED_HEADERS}
 * (credentials, the lock key, the idempotency key, which can fetch a live lock's key again) are
 * recorded as `<redacted>`.
 *
 * For code that does not use Effect, `createCreditHandler` (module `CreditHandler`) takes plain
 * options and resolves to a handler that is also an Express middleware.
 *
 * The storage is the caller's: this package depends on no adapter. The `creditlock` executable,
 * which configures this server from the environment and picks the store, is @creditlock/server.
 *
 * @module
 */
import type * as Http from "node:http"
import { createServer } from "node:http"
import { CreditEngine, type CreditEngineOptions, type InvalidRequest, type Storage } from "@creditlock/core"
import {
  Headers,
  type HttpApi,
  HttpApiBuilder,
  HttpApiSwagger,
  HttpMiddleware,
  HttpRouter,
  HttpServer,
  type HttpServerError,
} from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Duration, Effect, FiberRef, Layer, ManagedRuntime, type Scope } from "effect"
import { CreditLockApi } from "./Api.js"
import { Authentication, type Credential, DEFAULT_RATE_LIMIT, makeAccess, type RateLimit } from "./Auth.js"
import { ApiLive } from "./Handlers.js"
import { guard, routeTemplates } from "./internal/guard.js"
import { Readiness } from "./Readiness.js"

const pathOf = (url: string): string => {
  const end = url.search(/[?#]/)
  return end === -1 ? url : url.slice(0, end)
}

/** The largest request body accepted by default: 64 KiB. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024

/** The longest path segment the router matches (an id of 128 characters, percent-encoded, fits). */
const MAX_PARAM_LENGTH = 2048

/** Options of the API, however it is served. */
export interface ApiOptions {
  /** Who may call the API (see `Auth`). At least one credential is needed to call anything but health and docs. */
  readonly credentials: ReadonlyArray<Credential>
  /** Per-credential rate limit; default 60,000 requests per minute. */
  readonly rateLimit?: RateLimit | undefined
  /** The largest request body in bytes; default 64 KiB. Larger bodies → 413. */
  readonly maxBodyBytes?: number | undefined
  /** `Retry-After` seconds sent with every 503 (storage unavailable, outcome unknown, unlock incomplete); default 1. */
  readonly storageRetryAfterSeconds?: number | undefined
  /** Log one line per request (at Info); default true. */
  readonly logRequests?: boolean | undefined
  /**
   * Whether the server is stopping: while it answers true, `GET /readyz` answers 503
   * SHUTTING_DOWN. Default: never (a standalone server from {@link layerServer} sets its own).
   */
  readonly draining?: (() => boolean) | undefined
  /**
   * The API's public URL (absolute http or https, e.g. `https://credit.example.com/billing`): the
   * `servers` entry of `/openapi.json` and of the document in `/docs`, so that Swagger UI's "Try
   * it out" calls it. Default: derived from each request — `/openapi.json` names the scheme
   * (`https` when `X-Forwarded-Proto` says so), the `Host` and the mount path (Express's
   * `req.baseUrl`) the request came to; `/docs` names the mount path alone, which Swagger UI
   * resolves against the page's address. Set it when a proxy changes the host or the path. It is
   * used as given (trailing slashes dropped); `createCreditHandler` and the `creditlock` server
   * check it.
   */
  readonly publicUrl?: string | undefined
}

/**
 * Header names whose values a tracer records as `<redacted>` (beside @effect/platform's own:
 * `authorization`, `cookie`, `set-cookie`, `x-api-key`).
 */
export const REDACTED_HEADERS: ReadonlyArray<string> = [
  "authorization",
  "proxy-authorization",
  "cookie",
  "set-cookie",
  "api-key",
  "x-api-key",
  "x-lock-key",
  "idempotency-key",
]

/** A public URL as the documents name it: without trailing slashes. */
const trimPublicUrl = (text: string | undefined): string | undefined =>
  text === undefined ? undefined : text.replace(/\/+$/, "")

/** {@link REDACTED_HEADERS} for the fibers of the layers built after it (the server's request fibers). */
const layerRedactedHeaders: Layer.Layer<never> = Layer.scopedDiscard(
  FiberRef.getWith(Headers.currentRedactedNames, (names) =>
    Effect.locallyScoped(Headers.currentRedactedNames, [...new Set([...names, ...REDACTED_HEADERS])]),
  ),
)

/**
 * The API's routes (with `/openapi.json`, `/docs` and the guard) over the `CreditEngine` and
 * `Storage` in context. Serve it with `HttpApiBuilder.serve()` or {@link layerServer}.
 */
export const layerApi = (options: ApiOptions): Layer.Layer<HttpApi.Api, never, CreditEngine | Storage> => {
  const routeOf = routeTemplates(CreditLockApi, [
    ["GET", "/openapi.json"],
    ["GET", "/docs"],
  ])
  const access = makeAccess(options.credentials, options.rateLimit ?? DEFAULT_RATE_LIMIT)
  const guarded = HttpApiBuilder.middleware(
    guard({
      maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      storageRetryAfterSeconds: options.storageRetryAfterSeconds ?? 1,
      logRequests: options.logRequests ?? true,
      routeOf,
      limitPublic: access.limitPublic,
      documents: { publicUrl: trimPublicUrl(options.publicUrl) },
    }),
  )
  return Layer.mergeAll(
    HttpApiSwagger.layer({ path: "/docs" }),
    HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" }),
    guarded,
    // An id may be 128 characters, each up to 12 once percent-encoded; the router's default is 100.
    HttpRouter.setRouterConfig({ maxParamLength: MAX_PARAM_LENGTH, ignoreDuplicateSlashes: false }),
  ).pipe(
    Layer.provideMerge(ApiLive),
    Layer.provide(Authentication.layerAccess(access)),
    Layer.provide(
      options.draining === undefined ? Layer.empty : Layer.succeed(Readiness, { draining: options.draining }),
    ),
  )
}

/** Where a standalone server listens, and how it stops. */
export interface ListenOptions {
  /** Default `127.0.0.1`. */
  readonly host?: string | undefined
  /** Default 8080; 0 picks a free port. */
  readonly port?: number | undefined
  /**
   * How long requests in flight may take to finish once the server stops; default
   * {@link DEFAULT_DRAIN_TIMEOUT}. Connections still serving a request then are closed.
   */
  readonly drainTimeout?: Duration.DurationInput | undefined
}

/** How long a stopping server waits for requests in flight by default: 5 seconds. */
export const DEFAULT_DRAIN_TIMEOUT: Duration.Duration = Duration.seconds(5)

/**
 * Stops a node:http server the way a server behind a load balancer should: readiness turns 503,
 * the listener closes, idle keep-alive connections close, every response still to be written
 * carries `Connection: close` (so its connection closes once it is sent), and requests in flight
 * finish within `timeout`; connections still open then are closed. Resolves once every connection
 * is closed.
 */
const drain = (
  server: Http.Server,
  responses: ReadonlySet<Http.ServerResponse>,
  state: { draining: boolean },
  timeout: Duration.Duration,
): Effect.Effect<void> =>
  Effect.gen(function* () {
    state.draining = true
    for (const response of responses) {
      if (!response.headersSent) response.setHeader("connection", "close")
    }
    // Timed with a timer of its own: a finalizer is uninterruptible, so an Effect timeout could
    // not cut the wait short.
    const busy = yield* Effect.async<number>((resume) => {
      let busyAtDeadline = 0
      const idle = setInterval(() => server.closeIdleConnections(), 25)
      const deadline = setTimeout(() => {
        busyAtDeadline = responses.size
        server.closeAllConnections()
      }, Duration.toMillis(timeout))
      const done = () => {
        clearInterval(idle)
        clearTimeout(deadline)
        resume(Effect.succeed(busyAtDeadline))
      }
      if (!server.listening) return done()
      server.close(done)
      // A response whose headers were sent before the drain leaves its connection idle when it
      // ends: such connections are closed as they become idle.
      server.closeIdleConnections()
    })
    if (busy > 0) {
      yield* Effect.logWarning("requests still in flight at the drain deadline; their connections were closed").pipe(
        Effect.annotateLogs({ inFlight: busy }),
      )
    }
  })

/**
 * A standalone Node HTTP server over the `CreditEngine` and `Storage` in context. Releasing the
 * layer drains the server (readiness 503, listener closed, idle connections closed, requests in
 * flight finished within `drainTimeout`), then releases what the server was given.
 */
export const layerServer = (
  options: ApiOptions & ListenOptions,
): Layer.Layer<HttpServer.HttpServer, HttpServerError.ServeError, CreditEngine | Storage> =>
  Layer.unwrapEffect(
    Effect.sync(() => {
      const server = createServer()
      const state = { draining: false }
      const responses = new Set<Http.ServerResponse>()
      server.prependListener("request", (_request, response) => {
        if (state.draining) response.setHeader("connection", "close")
        responses.add(response)
        response.once("close", () => responses.delete(response))
      })
      const timeout = Duration.decode(options.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT)
      const nodeServer = NodeHttpServer.layer(() => server, {
        host: options.host ?? "127.0.0.1",
        port: options.port ?? 8080,
      })
      const routeOf = routeTemplates(CreditLockApi, [
        ["GET", "/openapi.json"],
        ["GET", "/docs"],
      ])
      const serving = HttpApiBuilder.serve().pipe(
        HttpMiddleware.withSpanNameGenerator(
          (request) => `${request.method} ${routeOf(request.method, pathOf(request.url))}`,
        ),
        Layer.provide(layerApi({ ...options, draining: () => state.draining || (options.draining?.() ?? false) })),
        Layer.provide(layerRedactedHeaders),
      )
      // Built after `serving`, so released before it: the request handler stays attached until
      // every connection has closed, and the engine and storage are released only after that.
      const draining = Layer.scopedDiscard(Effect.addFinalizer(() => drain(server, responses, state, timeout))).pipe(
        Layer.provide(serving),
      )
      return draining.pipe(Layer.provideMerge(nodeServer))
    }),
  )

/** What a mounted API needs besides {@link ApiOptions}: its storage, and engine settings. */
export interface MountOptions<E> extends ApiOptions {
  /** The storage, e.g. `MemoryStorage.layer()` or `SqliteStorage.layer({ filename })`. */
  readonly storage: Layer.Layer<Storage, E>
  /**
   * Engine settings (lock TTL, settle timeout, …). A setting outside its documented range fails
   * building the API with InvalidRequest naming it.
   */
  readonly engine?: CreditEngineOptions | undefined
}

const layerMounted = <E>(options: MountOptions<E>) =>
  layerApi(options).pipe(
    Layer.provide(CreditEngine.layer(options.engine)),
    Layer.provide(options.storage),
    Layer.provide(layerRedactedHeaders),
  )

/**
 * The API as a web handler (`Request` → `Promise<Response>`), for servers and runtimes built on
 * the Fetch API. Call `dispose` to release the engine and storage.
 */
export const toWebHandler = <E>(
  options: MountOptions<E>,
): {
  readonly handler: (request: Request) => Promise<Response>
  readonly dispose: () => Promise<void>
} => {
  const { dispose, handler } = HttpApiBuilder.toWebHandler(
    Layer.mergeAll(layerMounted(options), HttpServer.layerContext),
  )
  return { handler: (request) => handler(request), dispose }
}

/** A `node:http` request listener. */
export type NodeHandler = (request: Http.IncomingMessage, response: Http.ServerResponse) => void

const layerMountedNode = <E>(options: MountOptions<E>) =>
  Layer.mergeAll(
    layerMounted(options),
    HttpApiBuilder.Router.Live,
    HttpApiBuilder.Middleware.layer,
    NodeHttpServer.layerContext,
  )

const nodeHandler = Effect.flatMap(HttpApiBuilder.httpApp, (app) => NodeHttpServer.makeHandler(app))

/**
 * The API as a `node:http` request listener, within a scope: the engine and storage are released
 * when the scope closes. Fails with the storage's error, or InvalidRequest for invalid engine settings.
 */
export const makeNodeHandler = <E>(
  options: MountOptions<E>,
): Effect.Effect<NodeHandler, E | InvalidRequest, Scope.Scope> =>
  Effect.flatMap(Layer.build(layerMountedNode(options)), (context) => Effect.provide(nodeHandler, context))

/**
 * The API as a `node:http` request listener, for code that does not use Effect: mount `handler`
 * for the routes you hand over, and `await dispose()` on shutdown.
 */
export const toNodeHandler = async <E>(
  options: MountOptions<E>,
): Promise<{ readonly handler: NodeHandler; readonly dispose: () => Promise<void> }> => {
  const runtime = ManagedRuntime.make(layerMountedNode(options))
  try {
    const handler = await runtime.runPromise(nodeHandler)
    return { handler, dispose: () => runtime.dispose() }
  } catch (error) {
    await runtime.dispose()
    throw error
  }
}
