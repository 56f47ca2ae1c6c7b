/**
 * The typed client of the HTTP API, derived from the same definition as the server
 * (`HttpApiClient`): one method per endpoint, grouped as the API is (`credit`, `customer`,
 * `billingCare`, `ops`), with request and response bodies as schemas decode them and failures as
 * the engine's error classes (`CreditLocked`, `LockKeyMismatch`, …).
 *
 * ```ts
 * const client = yield* Client.make({ baseUrl: "http://127.0.0.1:8080", credential: { token } })
 * const path = { customerId: "cus_1", holderType: "contracts", holderId: "sub_1" } as const
 * const { data } = yield* client.credit.lock({ path, headers: {} })
 * ```
 *
 * It needs an `HttpClient` (e.g. `FetchHttpClient.layer` from @effect/platform).
 *
 * @module
 */
import { HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { Context, type Effect, Layer, Redacted } from "effect"
import { CreditLockApi } from "./Api.js"

/** How the client authenticates: a Bearer token, or `api-key` + `api-username` when `username` is set. */
export interface ClientCredential {
  readonly token: string | Redacted.Redacted<string>
  readonly username?: string | undefined
}

/** Options of {@link make}. */
export interface ClientOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:8080`. */
  readonly baseUrl: string | URL
  /** The credential sent with every request (none for public routes only). */
  readonly credential?: ClientCredential | undefined
}

const authenticate =
  (credential: ClientCredential | undefined) =>
  (request: HttpClientRequest.HttpClientRequest): HttpClientRequest.HttpClientRequest => {
    if (credential === undefined) return request
    const token = Redacted.isRedacted(credential.token) ? Redacted.value(credential.token) : credential.token
    return credential.username === undefined
      ? HttpClientRequest.bearerToken(request, token)
      : HttpClientRequest.setHeaders(request, { "api-key": token, "api-username": credential.username })
  }

/** Builds a client for the server at `baseUrl`. */
export const make = (options: ClientOptions) =>
  HttpApiClient.make(CreditLockApi, {
    baseUrl: options.baseUrl,
    transformClient: HttpClient.mapRequest(authenticate(options.credential)),
  })

/** The client: one method per endpoint, grouped like the API. */
export type Client = Effect.Effect.Success<ReturnType<typeof make>>

/** The client as a service, for programs that receive it from a layer. */
export class CreditLockClient extends Context.Tag("@creditlock/http/CreditLockClient")<CreditLockClient, Client>() {
  /** The client for `options`, over the `HttpClient` in context. */
  static readonly layer = (options: ClientOptions): Layer.Layer<CreditLockClient, never, HttpClient.HttpClient> =>
    Layer.effect(CreditLockClient, make(options))
}
