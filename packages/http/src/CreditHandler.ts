/**
 * The API mounted in an existing Node server or Express app, from code that does not use Effect:
 * `createCreditHandler` takes plain data (credentials with string tokens, numbers, a storage
 * layer such as `MemoryStorage.layer()`) and resolves to a request handler and `close`.
 *
 * ```js
 * import { createServer } from "node:http"
 * import { createCreditHandler } from "@creditlock/http"
 * import { MemoryStorage } from "@creditlock/memory"
 *
 * const credit = await createCreditHandler({
 *   storage: MemoryStorage.layer(),
 *   credentials: [{ token: process.env.CREDIT_TOKEN, customers: ["*"] }],
 * })
 * createServer(credit.handler).listen(8080) // or app.use(credit.handler) in Express
 * // on shutdown: await credit.close()
 * ```
 *
 * The handler is a `node:http` request listener and an Express middleware (at `/` or under a
 * mount path, which Express strips from `req.url`). Mounted with `next`, it answers only the paths
 * of the API ({@link CREDIT_API_PATHS}) and hands every other request to `next()`; without `next`
 * it answers everything (404 problem outside the API). A body parser in front of it
 * (`express.json()`, `express.urlencoded()`, …) is fine: the API uses the parsed `req.body`,
 * encoded again and checked like a body it read itself (body limit, JSON nesting, media type).
 *
 * @module
 */
import type * as Http from "node:http"
import {
  type CreditEngineOptions,
  CreditError,
  InvalidRequest,
  type Storage,
  StorageUnavailable,
} from "@creditlock/core"
import { type Cause, Duration, Effect, Either, Exit, Layer, Option, Scope } from "effect"
import { type Credential, type PlainCredential, type RateLimit, validateCredentials } from "./Auth.js"
import { problemBody } from "./Problem.js"
import { makeNodeHandler, type NodeHandler } from "./Server.js"

/**
 * The paths the API answers, each with everything under it (`/credit/v1/…`, `/bcws/…`). Mounted
 * as middleware, the handler passes any other path to `next()`.
 */
export const CREDIT_API_PATHS: ReadonlyArray<string> = [
  "/credit/v1",
  "/customer/unlock",
  "/bcws",
  "/openapi.json",
  "/docs",
  "/healthz",
  "/readyz",
]

/** Options of {@link createCreditHandler}: plain data, apart from the storage layer an adapter builds. */
export interface CreditHandlerOptions<E = unknown> {
  /** The storage, e.g. `MemoryStorage.layer()` or `SqliteStorage.layer({ filename })`; opened by `createCreditHandler`, released by `close`. */
  readonly storage: Layer.Layer<Storage, E>
  /**
   * Who may call the API: at least one `{ token, username?, customers }` (see `Auth`). Checked by
   * the rules of `Auth.validateCredentials`.
   */
  readonly credentials: ReadonlyArray<PlainCredential>
  /** Engine settings (lock TTL, …; durations as milliseconds or text such as `"30 seconds"`). */
  readonly engine?: CreditEngineOptions | undefined
  /** Per-credential rate limit, e.g. `{ limit: 600, window: "1 minute" }`; default 60,000 requests per minute. */
  readonly rateLimit?: RateLimit | undefined
  /** The largest request body in bytes, a positive integer; default 64 KiB. Larger bodies → 413. */
  readonly maxBodyBytes?: number | undefined
  /** `Retry-After` seconds sent with every 503, an integer ≥ 0; default 1. */
  readonly storageRetryAfterSeconds?: number | undefined
  /** Log one line per request (method, route template, status, duration); default true. */
  readonly logRequests?: boolean | undefined
  /**
   * The API's public URL, an absolute http:// or https:// URL such as
   * `https://credit.example.com/billing`: the `servers` entry of the OpenAPI document (Swagger
   * UI's "Try it out" calls it). Default: derived from each request, the Express mount path
   * included (see `Server.ApiOptions.publicUrl`).
   */
  readonly publicUrl?: string | undefined
}

/**
 * A `node:http` request listener that is also an Express middleware: with `next`, requests outside
 * {@link CREDIT_API_PATHS} go to `next()`.
 */
export type CreditRequestHandler = (
  request: Http.IncomingMessage,
  response: Http.ServerResponse,
  next?: (error?: unknown) => void,
) => void

/** A mounted API: its handler, and `close` to release the engine and the storage. */
export interface CreditHandler extends AsyncDisposable {
  readonly handler: CreditRequestHandler
  /**
   * Releases the engine and the storage (closing connections the adapter opened); afterwards the
   * handler answers 503. Stop the server first so no request is in flight. Calling it again waits
   * for the first call.
   */
  readonly close: () => Promise<void>
}

const knownOptions = new Set([
  "storage",
  "credentials",
  "engine",
  "rateLimit",
  "maxBodyBytes",
  "storageRetryAfterSeconds",
  "logRequests",
  "publicUrl",
])

const invalid = (detail: string): CreditError => CreditError.fromEngineError(new InvalidRequest({ detail }))

/** Checks the options that are plain data (the engine settings are checked when the engine is built). */
const check = <E>(options: CreditHandlerOptions<E>): Either.Either<ReadonlyArray<Credential>, CreditError> => {
  if (typeof options !== "object" || options === null) return Either.left(invalid("options: must be an object"))
  const unknown = Object.keys(options).filter((k) => !knownOptions.has(k))
  if (unknown.length > 0) return Either.left(invalid(`options: unknown option ${unknown.join(", ")}`))
  if (!Layer.isLayer(options.storage)) {
    return Either.left(invalid("storage: must be a storage layer, e.g. MemoryStorage.layer()"))
  }
  const credentials = validateCredentials(options.credentials, "credentials")
  if (Either.isLeft(credentials)) return Either.left(invalid(credentials.left))
  const { rateLimit, maxBodyBytes, storageRetryAfterSeconds, logRequests } = options
  if (rateLimit !== undefined) {
    const window = Duration.decodeUnknown(typeof rateLimit === "object" && rateLimit !== null ? rateLimit.window : null)
    if (
      typeof rateLimit !== "object" ||
      rateLimit === null ||
      !Number.isSafeInteger(rateLimit.limit) ||
      rateLimit.limit < 1 ||
      Option.isNone(window) ||
      !(Duration.toMillis(window.value) > 0) ||
      !Number.isFinite(Duration.toMillis(window.value))
    ) {
      return Either.left(
        invalid('rateLimit: must be { limit, window }, a positive integer per positive duration (e.g. "1 minute")'),
      )
    }
  }
  if (maxBodyBytes !== undefined && !(Number.isSafeInteger(maxBodyBytes) && maxBodyBytes > 0)) {
    return Either.left(invalid("maxBodyBytes: must be a positive integer"))
  }
  if (
    storageRetryAfterSeconds !== undefined &&
    !(Number.isSafeInteger(storageRetryAfterSeconds) && storageRetryAfterSeconds >= 0)
  ) {
    return Either.left(invalid("storageRetryAfterSeconds: must be an integer ≥ 0"))
  }
  if (logRequests !== undefined && typeof logRequests !== "boolean") {
    return Either.left(invalid("logRequests: must be true or false"))
  }
  if (options.publicUrl !== undefined && !isHttpUrl(options.publicUrl)) {
    return Either.left(invalid("publicUrl: must be an absolute http:// or https:// URL without query or fragment"))
  }
  return Either.right(credentials.right)
}

const isHttpUrl = (text: unknown): boolean => {
  if (typeof text !== "string") return false
  try {
    const url = new URL(text)
    return (url.protocol === "http:" || url.protocol === "https:") && url.search === "" && url.hash === ""
  } catch {
    return false
  }
}

/** A failure to build the API (engine settings, storage) as the error a Promise user receives. */
const toCreditError = (cause: Cause.Cause<unknown>): CreditError =>
  CreditError.fromCause(cause, "an unexpected error occurred while building the credit API")

const pathOf = (url: string): string => {
  const end = url.search(/[?#]/)
  return end === -1 ? url : url.slice(0, end)
}

/** Whether `url` (a request target, as in `req.url`) is one of the API's paths. */
export const isCreditApiPath = (url: string): boolean => {
  const path = pathOf(url)
  return CREDIT_API_PATHS.some((prefix) => path === prefix || path.startsWith(`${prefix}/`))
}

const closedBody = JSON.stringify(problemBody(new StorageUnavailable({ detail: "the credit API has been closed" })))

/**
 * Opens the storage, builds the engine and resolves to the API's request handler. Rejects with a
 * {@link CreditError}: 400 (`INVALID_REQUEST`) for invalid options, naming the option, a
 * credential's position and field, never a token; 503 when the storage cannot be opened.
 */
export const createCreditHandler = async <E>(options: CreditHandlerOptions<E>): Promise<CreditHandler> => {
  const checked = check(options)
  if (Either.isLeft(checked)) throw checked.left
  const scope = Effect.runSync(Scope.make())
  const built = await Effect.runPromiseExit(
    Scope.extend(
      makeNodeHandler({
        storage: options.storage,
        credentials: checked.right,
        engine: options.engine,
        rateLimit: options.rateLimit,
        maxBodyBytes: options.maxBodyBytes,
        storageRetryAfterSeconds: options.storageRetryAfterSeconds,
        logRequests: options.logRequests,
        publicUrl: options.publicUrl,
      }),
      scope,
    ),
  )
  if (Exit.isFailure(built)) {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    throw toCreditError(built.cause)
  }
  const serve: NodeHandler = built.value
  let closing: Promise<void> | undefined
  const close = (): Promise<void> => {
    closing ??= Effect.runPromise(Scope.close(scope, Exit.void))
    return closing
  }
  const handler: CreditRequestHandler = (request, response, next) => {
    if (next !== undefined && !isCreditApiPath(request.url ?? "/")) {
      next()
      return
    }
    if (closing !== undefined) {
      response.writeHead(503, { "content-type": "application/json", "cache-control": "no-store" })
      response.end(closedBody)
      return
    }
    serve(request, response)
  }
  return { handler, close, [Symbol.asyncDispose]: close }
}
