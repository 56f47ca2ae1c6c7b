/**
 * Talking to ioredis: running one command as an Effect with a hard time bound, turning every
 * failure into StorageUnavailable, waiting for a client to be ready, running scripts with NOSCRIPT
 * handled, and closing clients the library opened.
 *
 * @internal
 */
import { StorageUnavailable } from "@creditlock/core"
import { Effect } from "effect"
import type { Cluster, Redis } from "ioredis"
import type { Script } from "./scripts.js"

/** A standalone client or a Cluster client. */
export type Client = Redis | Cluster

/** Whether the client is a Cluster client. */
export const isCluster = (client: Client): client is Cluster => client.isCluster

/** The connections that hold data: the client itself, or every master of a Cluster. */
export const dataNodes = (client: Client): ReadonlyArray<Redis> =>
  isCluster(client) ? client.nodes("master") : [client]

const messageOf = (cause: unknown): string => {
  if (cause instanceof Error) return cause.message
  return typeof cause === "string" ? cause : "unknown failure"
}

/**
 * The failure reported for `cause`. Only the error's name and message are kept: ioredis errors
 * carry the arguments of the failed command, which may include a password (AUTH).
 */
export const unavailable = (what: string, cause: unknown): StorageUnavailable => {
  const message = messageOf(cause)
  const kept = new Error(message)
  if (cause instanceof Error) kept.name = cause.name
  return new StorageUnavailable({ detail: `Redis ${what} failed: ${message}`, cause: kept })
}

/**
 * Runs one promise-returning call and settles within `timeoutMillis` whatever the client does:
 * the bound holds even for a caller's client with an offline queue. The timer is Node's own, so a
 * `TestClock` in the caller's context does not hold it back.
 */
export const attempt = <A>(
  what: string,
  timeoutMillis: number,
  f: () => Promise<A>,
): Effect.Effect<A, StorageUnavailable> =>
  Effect.async<A, StorageUnavailable>((resume) => {
    let settled = false
    const finish = (effect: Effect.Effect<A, StorageUnavailable>) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resume(effect)
    }
    const timer = setTimeout(
      () => finish(Effect.fail(unavailable(what, new Error(`no answer within ${timeoutMillis} ms`)))),
      timeoutMillis,
    )
    try {
      f().then(
        (a) => finish(Effect.succeed(a)),
        (cause: unknown) => finish(Effect.fail(unavailable(what, cause))),
      )
    } catch (cause) {
      finish(Effect.fail(unavailable(what, cause)))
    }
    return Effect.sync(() => {
      settled = true
      clearTimeout(timer)
    })
  })

const isNoScript = (cause: unknown): boolean => cause instanceof Error && cause.message.startsWith("NOSCRIPT")

/**
 * EVALSHA, and EVAL when the server does not know the script (NOSCRIPT: its cache was flushed or
 * it restarted). A NOSCRIPT reply means the script did not run, so running it with EVAL cannot
 * apply anything twice; EVAL also caches the script again on that server.
 */
export const evalScript = (
  client: Client,
  script: Script,
  keys: ReadonlyArray<string>,
  args: ReadonlyArray<string>,
): Promise<unknown> =>
  client.evalsha(script.sha, keys.length, ...keys, ...args).catch((cause: unknown) => {
    if (!isNoScript(cause)) throw cause
    return client.eval(script.lua, keys.length, ...keys, ...args)
  })

/**
 * Resolves when the client is ready: at once when it is, by connecting it when it was created
 * with `lazyConnect` and never connected, else on its next `ready` event. Rejects after
 * `timeoutMillis`, or at once for a client that was closed for good.
 */
export const awaitReady = (client: Client, timeoutMillis: number): Promise<void> => {
  if (client.status === "ready") return Promise.resolve()
  if (client.status === "end") return Promise.reject(new Error("the client was closed"))
  return new Promise<void>((resolve, reject) => {
    // The reason a connection attempt failed (refused, WRONGPASS, …) arrives as an "error" event.
    let lastError: unknown
    const cleanup = () => {
      clearTimeout(timer)
      client.removeListener("ready", onReady)
      client.removeListener("error", onError)
    }
    const onReady = () => {
      cleanup()
      resolve()
    }
    const onError = (cause: unknown) => {
      lastError = cause
    }
    const timer = setTimeout(() => {
      cleanup()
      const reason =
        lastError === undefined
          ? ""
          : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`
      reject(new Error(`not connected within ${timeoutMillis} ms${reason}`))
    }, timeoutMillis)
    client.once("ready", onReady)
    client.on("error", onError)
    if (client.status === "wait") {
      client.connect().catch((cause: unknown) => {
        cleanup()
        reject(lastError ?? cause)
      })
    }
  })
}

/**
 * Closes a client the library opened: QUIT (so the server sees a clean goodbye) bounded by
 * `timeoutMillis`, then a hard disconnect, which also stops any reconnection in progress.
 */
export const closeClient = async (client: Client, timeoutMillis: number): Promise<void> => {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      client.quit().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMillis)
      }),
    ])
  } finally {
    clearTimeout(timer)
    client.disconnect()
  }
}
