/**
 * Test tools of this package: watching what a Redis server executes (MONITOR), poking single
 * Cluster nodes, a TCP proxy that can cut a connection at a chosen command, and building raw
 * commit requests for adapter-level tests.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { createConnection, createServer, type Socket } from "node:net"
import type { CommitRequest, HolderRef, IndexKey, JournalEntry, StoredHolder } from "@creditlock/core/storage"
import { type RedisServer, requireRedis, startServer } from "@creditlock/test-suite/redis-server"
import { Effect, type Scope } from "effect"
import { Redis } from "ioredis"
import { afterAll, beforeAll } from "vitest"

/** The commands a MONITOR connection has seen so far, one line each, as Redis prints them. */
export interface Monitor {
  readonly lines: () => ReadonlyArray<string>
  /** The lines of client commands (not those scripts run) naming `name` (e.g. `evalsha`) and containing `text`. */
  readonly commands: (name: string, text: string) => ReadonlyArray<string>
}

/**
 * Starts MONITOR on the server at `port` and resolves once it is on; the connection is closed with
 * the scope. Commands a script runs are printed with `lua` as their source and are not counted by
 * `commands`.
 */
export const monitor = (port: number): Effect.Effect<Monitor, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ readonly monitor: Monitor; readonly socket: Socket }>((resume) => {
      const socket = createConnection({ host: "127.0.0.1", port })
      const lines: Array<string> = []
      let buffer = ""
      let started = false
      const watched: Monitor = {
        lines: () => [...lines],
        commands: (name, text) =>
          lines.filter((l) => !l.includes(" lua] ") && l.includes(`] "${name}" `) && l.includes(text)),
      }
      socket.on("error", () => undefined)
      socket.on("connect", () => socket.write("MONITOR\r\n"))
      socket.on("data", (data) => {
        buffer += data.toString("utf8")
        for (let end = buffer.indexOf("\r\n"); end >= 0; end = buffer.indexOf("\r\n")) {
          const line = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          if (!started && line === "+OK") {
            started = true
            resume(Effect.succeed({ monitor: watched, socket }))
          } else if (started) lines.push(line)
        }
      })
    }),
    ({ socket }) => Effect.sync(() => socket.destroy()),
  ).pipe(Effect.map(({ monitor }) => monitor))

/** A plain connection to one server (or one Cluster node), closed with the scope. */
export const nodeClient = (port: number): Effect.Effect<Redis, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => new Redis(port, "127.0.0.1", { lazyConnect: false, maxRetriesPerRequest: 1 })),
    (client) => Effect.sync(() => client.disconnect()),
  )

/** Sleeps for `millis` of real time. */
export const sleep = (millis: number) => Effect.promise(() => new Promise((r) => setTimeout(r, millis)))

/** Retries `check` every 50 ms until it holds, for at most `timeoutMillis`; fails loudly after. */
export const eventually = <E, R>(what: string, check: Effect.Effect<boolean, E, R>, timeoutMillis = 10_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMillis
    while (Date.now() < deadline) {
      if (yield* check) return
      yield* sleep(50)
    }
    return yield* Effect.dieMessage(`${what}: not within ${timeoutMillis} ms`)
  })

/**
 * A TCP proxy in front of a Redis server. `cutAt(pattern)` arms it: the next chunk the client
 * sends that contains `pattern` (case-insensitive) is dropped and the connection is cut — as if the
 * process or the network died right after the previous command — and it disarms itself.
 * `loseReplyTo(pattern)` lets that chunk through instead, and cuts the connection when the server
 * answers it, dropping the answer: the command ran, its reply was lost. Meant for connections
 * that carry one command at a time.
 */
export interface Proxy {
  readonly port: number
  readonly cutAt: (pattern: string) => void
  readonly loseReplyTo: (pattern: string) => void
  /** How many connections were cut so far. */
  readonly cuts: () => number
}

/** Starts a {@link Proxy} for the server at `target`, closed with the scope. */
export const proxy = (target: number): Effect.Effect<Proxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ readonly proxy: Proxy; readonly close: () => void }>((resume) => {
      let armed: { readonly pattern: string; readonly replies: boolean } | null = null
      let cuts = 0
      const sockets = new Set<Socket>()
      const server = createServer((client) => {
        const upstream = createConnection({ host: "127.0.0.1", port: target })
        sockets.add(client)
        sockets.add(upstream)
        const cut = () => {
          client.destroy()
          upstream.destroy()
        }
        client.on("error", cut)
        upstream.on("error", cut)
        client.on("close", cut)
        upstream.on("close", cut)
        let losing = false
        client.on("data", (data) => {
          if (armed !== null && data.toString("utf8").toLowerCase().includes(armed.pattern)) {
            const { replies } = armed
            armed = null
            if (replies) losing = true
            else {
              cuts += 1
              cut()
              return
            }
          }
          upstream.write(data)
        })
        upstream.on("data", (data) => {
          if (losing) {
            cuts += 1
            cut()
            return
          }
          client.write(data)
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = address !== null && typeof address === "object" ? address.port : 0
        resume(
          Effect.succeed({
            proxy: {
              port,
              cutAt: (pattern) => {
                armed = { pattern: pattern.toLowerCase(), replies: false }
              },
              loseReplyTo: (pattern) => {
                armed = { pattern: pattern.toLowerCase(), replies: true }
              },
              cuts: () => cuts,
            },
            close: () => {
              for (const s of sockets) s.destroy()
              server.close()
            },
          }),
        )
      })
    }),
    ({ close }) => Effect.sync(close),
  ).pipe(Effect.map(({ proxy }) => proxy))

const AT = Date.UTC(2026, 0, 1)

/**
 * The commit that appends one GBP credit of `delta` to a stored holder, with a fresh entry id and
 * (when given) a reference; index keys are the entry's order keys.
 */
export const creditRequest = (stored: StoredHolder, delta: number, reference?: string): CommitRequest => {
  const { document } = stored
  const before = document.balances.find((b) => b.currencyCode === "GBP")?.value ?? 0
  const seq = document.journalSeq + 1
  const balances = [
    ...document.balances.filter((b) => b.currencyCode !== "GBP"),
    { currencyCode: "GBP", value: before + delta, updatedAt: AT },
  ]
  const entry: JournalEntry = {
    id: randomUUID(),
    seq,
    at: AT,
    holder: document.ref,
    kind: "modification",
    reason: "test",
    ...(reference === undefined ? {} : { reference }),
    changes: [{ currencyCode: "GBP", delta, before, after: before + delta }],
    balances,
  }
  const index: Array<IndexKey> = [
    { kind: "order", value: entry.id },
    ...(reference === undefined ? [] : [{ kind: "order" as const, value: reference }]),
  ]
  return {
    ref: document.ref,
    expected: stored.revision,
    document: { ...document, balances, journalSeq: seq },
    entries: [entry],
    index,
    claims: [],
  }
}

/** Hash-tag text of a holder's keys, to find its commands in MONITOR output. */
export const holderTag = (ref: HolderRef): string => `{${ref.customerId}}`

/** One redis-server for the whole test file, with a plain ioredis client to inspect it. */
export interface FileServer {
  readonly url: () => string
  readonly port: () => number
  /** The inspection client: plain ioredis on the same server. */
  readonly raw: () => Redis
}

/**
 * Starts a redis-server before the file's tests and stops it (by pid) after them. Fails the whole
 * file, before any test is collected, when redis-server or redis-cli is missing.
 */
export const serverPerFile = (): FileServer => {
  requireRedis()
  let server: RedisServer | undefined
  let redis: Redis | undefined
  beforeAll(async () => {
    server = await startServer()
    redis = new Redis(server.url)
  })
  afterAll(async () => {
    await redis?.quit()
    await server?.dispose()
  })
  const started = (): RedisServer => {
    if (server === undefined) throw new Error("the Redis server did not start")
    return server
  }
  return {
    url: () => started().url,
    port: () => started().port,
    raw: () => {
      if (redis === undefined) throw new Error("the Redis server did not start")
      return redis
    },
  }
}
