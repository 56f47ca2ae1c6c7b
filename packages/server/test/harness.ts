/**
 * Test harness: the server program's layer (`Main.layer`) on 127.0.0.1 and a free port, and a
 * request helper.
 */
import type { HolderRef } from "@creditlock/core"
import { bearer, request } from "@creditlock/test-suite/http"
import { HttpServer } from "@effect/platform"
import { Effect, Layer, Logger, ManagedRuntime, Option, Redacted } from "effect"
import { layer } from "../src/Main.js"
import type { StoreConfig } from "../src/Store.js"

export { bearer, request }

/** An administrator: every customer. Bearer. */
export const ADMIN = { token: "admin-secret-token-0001", customers: ["*"] } as const
/** A credential with a username (presented as api-key + api-username), every customer. */
export const TRACK = { token: "track-secret-key-0003", username: "trackfinity", customers: ["*"] } as const

/** A running server. */
export interface Running {
  readonly base: string
  readonly close: () => Promise<void>
}

/**
 * Starts the server program's layer on a store, with {@link ADMIN} and {@link TRACK} as
 * credentials; its request logs are dropped (the bin tests read them).
 */
export const startServer = async (store: StoreConfig): Promise<Running> => {
  const runtime = ManagedRuntime.make(
    layer({
      host: "127.0.0.1",
      port: 0,
      store,
      credentials: Option.some([ADMIN, TRACK].map((c) => ({ ...c, token: Redacted.make(c.token) }))),
      rateLimitPerMinute: 60_000,
      lockTtlSeconds: 3600,
      maxLockLifetimeSeconds: Option.none(),
      lockKeySecret: Option.none(),
    }).pipe(Layer.provide(Logger.replace(Logger.defaultLogger, Logger.none))),
  )
  const address = await runtime.runPromise(Effect.map(HttpServer.HttpServer, (server) => server.address))
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return { base: `http://127.0.0.1:${address.port}`, close: () => runtime.dispose() }
}

/** JSON content type plus the admin's Bearer token. */
export const adminJson: Record<string, string> = { ...bearer(ADMIN), "content-type": "application/json" }

/** The path of a holder. */
export const holderPath = (ref: HolderRef): string =>
  `/credit/v1/customers/${encodeURIComponent(ref.customerId)}/${ref.holderType}/${encodeURIComponent(ref.holderId)}`
