/**
 * @creditlock/http: the HTTP API of creditlock (Bento's credit API, Trackfinity's customer unlock,
 * Billing Care's credit limits) over `CreditEngine`, defined once with @effect/platform's `HttpApi`:
 * the server, the OpenAPI document, Swagger UI and a typed client all come from that definition.
 *
 * @module
 */
export * as Api from "./Api.js"
export * as Auth from "./Auth.js"
export * as Client from "./Client.js"
export * as Handlers from "./Handlers.js"
export * as Main from "./Main.js"
export * as Problem from "./Problem.js"
export * as Representation from "./Representation.js"
export * as Server from "./Server.js"
export * as Store from "./Store.js"
