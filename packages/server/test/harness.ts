/**
 * Test harness: the server program's layer (`Main.layer`) on 127.0.0.1 and a free port, and a
 * request helper.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
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

/** A `creditlock serve` process started by {@link startBin}. */
export interface RunningBin {
  /** The API's base URL, from the start-up line. */
  readonly api: string
  readonly child: ChildProcess
  /** Everything it wrote so far (stdout and stderr). */
  readonly output: () => string
}

const root = fileURLToPath(new URL("../../..", import.meta.url))

/**
 * Starts `creditlock serve` (the bin, through tsx) on 127.0.0.1, a free port and a memory store,
 * with one admin credential of `token` and `env` on top; resolves once its start-up line names
 * the API's URL and `ready` (given everything written so far) says yes. The child is pushed on
 * `children`, for the caller's clean-up.
 */
export const startBin = (
  token: string,
  env: Record<string, string>,
  children: Array<ChildProcess>,
  ready: (output: string) => boolean = () => true,
): Promise<RunningBin> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "packages/server/src/bin.ts", "serve"], {
      cwd: root,
      env: {
        ...process.env,
        HOST: "127.0.0.1",
        PORT: "0",
        CREDIT_STORE: "memory:",
        CREDIT_CREDENTIALS: JSON.stringify([{ token, customers: ["*"] }]),
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    })
    children.push(child)
    let output = ""
    const timer = setTimeout(() => reject(new Error(`the server did not start:\n${output}`)), 60_000)
    const read = (chunk: Buffer) => {
      output += chunk.toString("utf8")
      const api = /"creditlock listening on (http:\/\/127\.0\.0\.1:\d+) /.exec(output)?.[1]
      if (api !== undefined && ready(output)) {
        clearTimeout(timer)
        resolve({ api, child, output: () => output })
      }
    }
    child.stdout.on("data", read)
    child.stderr.on("data", read)
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`the server exited with ${code}:\n${output}`))
    })
  })
