/**
 * @creditlock/http: the HTTP API of creditlock (Bento's credit API, Trackfinity's customer unlock,
 * Billing Care's credit limits) over `CreditEngine`, defined once with @effect/platform's `HttpApi`:
 * the routes, the OpenAPI document, Swagger UI, the node:http and web handlers and a typed client
 * all come from that definition. It depends on @creditlock/core only: the storage is handed in by
 * the caller, and the standalone `creditlock` server (configuration, store selection) is
 * @creditlock/server.
 *
 * `createCreditHandler` mounts the API in an existing `node:http` server or Express app from code
 * that does not use Effect: plain options in, a request handler and `close` out.
 *
 * @module
 */
export * as Api from "./Api.js"
export * as Auth from "./Auth.js"
export * as Client from "./Client.js"
/** The API mounted in a `node:http` server or an Express app, for code that does not use Effect. */
export {
  CREDIT_API_PATHS,
  type CreditHandler,
  type CreditHandlerOptions,
  type CreditRequestHandler,
  createCreditHandler,
  isCreditApiPath,
} from "./CreditHandler.js"
export * as Handlers from "./Handlers.js"
export * as Metrics from "./Metrics.js"
export * as Problem from "./Problem.js"
export * as Readiness from "./Readiness.js"
export * as Representation from "./Representation.js"
export * as Server from "./Server.js"
