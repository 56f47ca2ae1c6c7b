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
  type HttpApi,
  HttpApiBuilder,
  HttpApiSwagger,
  HttpRouter,
  HttpServer,
  type HttpServerError,
} from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, ManagedRuntime, type Scope } from "effect"
import { CreditLockApi } from "./Api.js"
import { Authentication, type Credential, DEFAULT_RATE_LIMIT, type RateLimit } from "./Auth.js"
import { ApiLive } from "./Handlers.js"
import { guard, routeTemplates } from "./internal/guard.js"

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
}

/**
 * The API's routes (with `/openapi.json`, `/docs` and the guard) over the `CreditEngine` and
 * `Storage` in context. Serve it with `HttpApiBuilder.serve()` or {@link layerServer}.
 */
export const layerApi = (options: ApiOptions): Layer.Layer<HttpApi.Api, never, CreditEngine | Storage> => {
  const routeOf = routeTemplates(CreditLockApi, [
    ["GET", "/openapi.json"],
    ["GET", "/docs"],
  ])
  const guarded = HttpApiBuilder.middleware(
    guard({
      maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      storageRetryAfterSeconds: options.storageRetryAfterSeconds ?? 1,
      logRequests: options.logRequests ?? true,
      routeOf,
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
    Layer.provide(Authentication.layer(options.credentials, options.rateLimit ?? DEFAULT_RATE_LIMIT)),
  )
}

/** Where a standalone server listens. */
export interface ListenOptions {
  /** Default `127.0.0.1`. */
  readonly host?: string | undefined
  /** Default 8080; 0 picks a free port. */
  readonly port?: number | undefined
}

/**
 * A standalone Node HTTP server over the `CreditEngine` and `Storage` in context. Releasing the
 * layer stops accepting connections, lets requests in flight finish, then releases what the
 * server was given.
 */
export const layerServer = (
  options: ApiOptions & ListenOptions,
): Layer.Layer<HttpServer.HttpServer, HttpServerError.ServeError, CreditEngine | Storage> =>
  Layer.unwrapEffect(
    Effect.sync(() => {
      const server = createServer()
      // Released before the server is closed: connections still serving a request are closed as
      // soon as their response is sent, instead of lingering in keep-alive until the client leaves.
      const drain = Layer.scopedDiscard(
        Effect.zipRight(
          HttpServer.HttpServer,
          Effect.addFinalizer(() =>
            Effect.sync(() => {
              const timer = setInterval(() => server.closeIdleConnections(), 10)
              timer.unref()
              server.once("close", () => clearInterval(timer))
            }),
          ),
        ),
      )
      return HttpApiBuilder.serve().pipe(
        Layer.provide(layerApi(options)),
        Layer.merge(drain),
        Layer.provideMerge(
          NodeHttpServer.layer(() => server, { host: options.host ?? "127.0.0.1", port: options.port ?? 8080 }),
        ),
      )
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
  layerApi(options).pipe(Layer.provide(CreditEngine.layer(options.engine)), Layer.provide(options.storage))

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
