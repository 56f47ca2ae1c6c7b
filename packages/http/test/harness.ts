/**
 * Test harness: a real server on a free loopback port over an instrumented storage (counting
 * commits, able to fail on demand), with the engine and storage reachable from the test and every
 * log line captured.
 */

import {
  CreditEngine,
  type CreditEngineOptions,
  type HolderRef,
  type JournalEntry,
  Storage,
  StorageUnavailable,
} from "@creditlock/core"
import { MemoryStorage } from "@creditlock/memory"
import { bearer, request } from "@creditlock/test-suite/http"
import { HttpServer } from "@effect/platform"
import { Duration, Effect, Layer, Logger, ManagedRuntime, Option, Redacted } from "effect"
import { afterAll, beforeAll } from "vitest"
import type { Credential, RateLimit } from "../src/Auth.js"
import { layerServer } from "../src/Server.js"

export { bearer, request }

/** An administrator: every customer. Bearer. */
export const ADMIN = { token: "admin-secret-token-0001", customers: ["*"] } as const
/** A credential for customer `cus_a` only. Bearer. */
export const LIMITED = { token: "limited-secret-token-0002", customers: ["cus_a"] } as const
/** A credential with a username (presented as api-key + api-username), every customer. */
export const TRACK = { token: "track-secret-key-0003", username: "trackfinity", customers: ["*"] } as const
/** A credential for customer `cus_b` only. Bearer. */
export const LIMITED_B = { token: "limited-b-secret-token-0004", customers: ["cus_b"] } as const

const credentials: ReadonlyArray<Credential> = [ADMIN, LIMITED, TRACK, LIMITED_B].map((c) => ({
  ...c,
  token: Redacted.make(c.token),
}))

/** How the instrumented storage behaves; tests flip `failing` to inject faults. */
export interface StorageControl {
  /** Commits answered `Committed`. */
  commits: number
  failing: "unavailable" | "defect" | undefined
  /** Every load waits this long first (to keep requests in flight). */
  loadDelayMillis: number
}

const instrumented = <E>(control: StorageControl, inner: Layer.Layer<Storage, E>): Layer.Layer<Storage, E> =>
  Layer.effect(
    Storage,
    Effect.gen(function* () {
      const inner = yield* Storage
      const fault = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E | StorageUnavailable> =>
        Effect.suspend((): Effect.Effect<A, E | StorageUnavailable> => {
          if (control.failing === "unavailable") {
            return Effect.fail(new StorageUnavailable({ detail: "the test storage is down" }))
          }
          if (control.failing === "defect") return Effect.die(new Error("SECRET-INTERNAL-DETAIL from the test storage"))
          return effect
        })
      return Storage.of({
        load: (ref) => Effect.zipRight(Effect.sleep(control.loadDelayMillis), fault(inner.load(ref))),
        commit: (request) =>
          fault(inner.commit(request)).pipe(
            Effect.tap((outcome) =>
              Effect.sync(() => {
                if (outcome._tag === "Committed") control.commits++
              }),
            ),
          ),
        lookup: (key) => fault(inner.lookup(key)),
        findEntry: (ref, selector) => fault(inner.findEntry(ref, selector)),
        journal: (ref, range) => fault(inner.journal(ref, range)),
        ping: fault(inner.ping),
      })
    }),
  ).pipe(Layer.provide(inner))

/** Options of {@link startServer}. */
export interface HarnessOptions {
  readonly rateLimit?: RateLimit
  readonly engine?: CreditEngineOptions
  /** The storage under the instrumentation (default: a fresh in-memory store). */
  readonly storage?: Layer.Layer<Storage, unknown>
  /** How long a closing server waits for requests in flight (default: the server's). */
  readonly drainTimeout?: Duration.Duration
  /** The API's public URL (the documents' `servers`); default: derived from each request. */
  readonly publicUrl?: string
}

/** A running server and handles on its internals. */
export interface Harness {
  readonly base: string
  readonly control: StorageControl
  /** Every log line (structured, JSON) written while the server ran. */
  readonly logs: Array<string>
  readonly run: <A, E>(effect: Effect.Effect<A, E, CreditEngine | Storage>) => Promise<A>
  readonly close: () => Promise<void>
}

/** Starts a server on 127.0.0.1 and a free port over a fresh in-memory store. */
export const startServer = async (options: HarnessOptions = {}): Promise<Harness> => {
  const control: StorageControl = { commits: 0, failing: undefined, loadDelayMillis: 0 }
  const logs: Array<string> = []
  const capture = Logger.map(Logger.structuredLogger, (line) => {
    logs.push(JSON.stringify(line))
  })
  const layer = layerServer({
    host: "127.0.0.1",
    port: 0,
    credentials,
    ...(options.rateLimit === undefined ? {} : { rateLimit: options.rateLimit }),
    ...(options.drainTimeout === undefined ? {} : { drainTimeout: options.drainTimeout }),
    ...(options.publicUrl === undefined ? {} : { publicUrl: options.publicUrl }),
  }).pipe(
    Layer.provideMerge(CreditEngine.layer(options.engine ?? { lockTtl: Duration.hours(1) })),
    Layer.provideMerge(instrumented(control, options.storage ?? MemoryStorage.layer())),
    Layer.provide(Logger.replace(Logger.defaultLogger, capture)),
  )
  const runtime = ManagedRuntime.make(layer)
  const address = await runtime.runPromise(Effect.map(HttpServer.HttpServer, (server) => server.address))
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return {
    base: `http://127.0.0.1:${address.port}`,
    control,
    logs,
    run: (effect) => runtime.runPromise(effect),
    close: () => runtime.dispose(),
  }
}

/** JSON content type plus the admin's Bearer token. */
export const adminJson: Record<string, string> = { ...bearer(ADMIN), "content-type": "application/json" }

/** Everything stored for a holder: document with revision, and its whole journal. */
export const snapshot = (ref: HolderRef) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const stored = yield* storage.load(ref)
    const journal: Array<JournalEntry> = []
    let afterSeq = 0
    for (;;) {
      const page = yield* storage.journal(ref, { afterSeq, limit: 1000 })
      journal.push(...page)
      const last = page.at(-1)
      if (last === undefined || page.length < 1000) break
      afterSeq = last.seq
    }
    return { stored: Option.getOrNull(stored), journal }
  })

/** The path of a holder. */
export const holderPath = (ref: HolderRef): string =>
  `/credit/v1/customers/${encodeURIComponent(ref.customerId)}/${ref.holderType}/${encodeURIComponent(ref.holderId)}`

/** Asserts nothing; returns the problem item of a problem body, or undefined when the body is not one. */
export const problemOf = (
  json: unknown,
): { status: string; title: string; detail: string; code: string } | undefined => {
  if (typeof json !== "object" || json === null || !("error" in json) || !Array.isArray(json.error)) return undefined
  const [item] = json.error as Array<unknown>
  if (typeof item !== "object" || item === null) return undefined
  const { status, title, detail, code } = item as Record<string, unknown>
  if (typeof status !== "string" || typeof title !== "string" || typeof detail !== "string" || typeof code !== "string")
    return undefined
  return { status, title, detail, code }
}

/**
 * One server for a whole test file: started before its tests, closed after them. The returned
 * object reads through to that server, so tests use it as a `Harness`.
 */
export const serverPerFile = (options: HarnessOptions = {}): Harness => {
  let current: Harness | undefined
  beforeAll(async () => {
    current = await startServer(options)
  })
  afterAll(async () => {
    await current?.close()
  })
  const get = (): Harness => {
    if (current === undefined) throw new Error("the test server is used before it started")
    return current
  }
  return {
    get base() {
      return get().base
    },
    get control() {
      return get().control
    },
    get logs() {
      return get().logs
    },
    run: (effect) => get().run(effect),
    close: () => get().close(),
  }
}
