/**
 * Talking to ioredis: reads as Effects with a hard time bound (every failure StorageUnavailable),
 * writes that leave the process at most once and never after they were answered (every failure
 * classified as certainly not applied or perhaps applied), scripts with NOSCRIPT handled, the
 * resend check of a caller's client, and closing clients the library opened.
 *
 * @internal
 */
import { OutcomeUnknown, StorageUnavailable } from "@creditlock/core/storage"
import { Effect } from "effect"
import { type Cluster, Command, type Redis } from "ioredis"
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
 * Only the error's name and message are kept: ioredis errors carry the arguments of the failed
 * command, which may include a password (AUTH) or a whole document.
 */
const scrubbed = (cause: unknown): Error => {
  const kept = new Error(messageOf(cause))
  if (cause instanceof Error) kept.name = cause.name
  return kept
}

/** The failure reported for `cause`: the call did not happen, or it was a read. */
export const unavailable = (what: string, cause: unknown): StorageUnavailable =>
  new StorageUnavailable({ detail: `Redis ${what} failed: ${messageOf(cause)}`, cause: scrubbed(cause) })

/**
 * The Redis error code of a reply error (`TRYAGAIN`, `MOVED`, …), also when ioredis's Cluster
 * wrapped it ("Too many Cluster redirections. Last error: ReplyError: TRYAGAIN …", which is how
 * a Cluster client with `maxRedirections: 0` rejects every error reply); `undefined` for any other
 * failure (a closed connection, a timeout).
 */
export const replyCode = (cause: unknown): string | undefined => {
  if (!(cause instanceof Error)) return undefined
  const wrapped = /^Too many Cluster redirections\. Last error: ReplyError: (\S+)/.exec(cause.message)
  if (wrapped !== null) return wrapped[1]
  if (cause.name !== "ReplyError") return undefined
  return /^(\S+)/.exec(cause.message)?.[1]
}

/**
 * Error replies Redis gives *instead of* running a command: redirections and cluster states
 * (MOVED, ASK, TRYAGAIN, CLUSTERDOWN), an unknown script (NOSCRIPT), refusals before execution
 * (LOADING, BUSY, NOAUTH, NOPERM, OOM, READONLY, MASTERDOWN, MISCONF, NOREPLICAS, CROSSSLOT,
 * EXECABORT) and WRONGTYPE, which the commit script raises only from its checks before its first
 * write (and which a one-key command raises without writing). Any other error reply — `ERR …`
 * from a Lua runtime error, for instance, which Redis does not roll back — may follow a write.
 */
const NOT_RUN = new Set([
  "MOVED",
  "ASK",
  "TRYAGAIN",
  "CLUSTERDOWN",
  "NOSCRIPT",
  "LOADING",
  "BUSY",
  "NOAUTH",
  "NOPERM",
  "OOM",
  "READONLY",
  "MASTERDOWN",
  "MISCONF",
  "NOREPLICAS",
  "CROSSSLOT",
  "EXECABORT",
  "WRONGTYPE",
])

/** Whether `cause` is an error reply that means the command did not run. */
export const refusedBeforeRunning = (cause: unknown): boolean => {
  const code = replyCode(cause)
  return code !== undefined && NOT_RUN.has(code)
}

/** A Cluster client's slot map is stale when a node answers MOVED (or ASK): refresh it. */
const noteTopology = (client: Client, cause: unknown): void => {
  const code = replyCode(cause)
  if (isCluster(client) && (code === "MOVED" || code === "ASK")) client.refreshSlotsCache()
}

/**
 * Runs one promise-returning read and settles within `timeoutMillis` whatever the client does:
 * the bound holds even for a client with an offline queue. The timer is Node's own, so a
 * `TestClock` in the caller's context does not hold it back. Reads change nothing, so every
 * failure is StorageUnavailable; a MOVED answer refreshes a Cluster client's slot map.
 */
export const attempt = <A>(
  what: string,
  timeoutMillis: number,
  f: () => Promise<A>,
  client?: Client,
): Effect.Effect<A, StorageUnavailable> =>
  Effect.async<A, StorageUnavailable>((resume) => {
    let settled = false
    const finish = (effect: Effect.Effect<A, StorageUnavailable>) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resume(effect)
    }
    const fail = (cause: unknown) => {
      if (client !== undefined) noteTopology(client, cause)
      finish(Effect.fail(unavailable(what, cause)))
    }
    const timer = setTimeout(() => fail(new Error(`no answer within ${timeoutMillis} ms`)), timeoutMillis)
    try {
      f().then((a) => finish(Effect.succeed(a)), fail)
    } catch (cause) {
      fail(cause)
    }
    return Effect.sync(() => {
      settled = true
      clearTimeout(timer)
    })
  })

/**
 * How a write failed: `applied: "no"` when it certainly did not happen (it never left the
 * process, or Redis refused it before running it), `"maybe"` when it was sent and no answer that
 * excludes it came back. `code` is the Redis error code of a refusal.
 */
export interface WriteFailure {
  readonly applied: "no" | "maybe"
  readonly code: string | undefined
  readonly cause: Error
}

/** A `PING`, written instead of a command that must not leave the process (see {@link write}). */
const PING = "*1\r\n$4\r\nPING\r\n"

/**
 * Sends one write command, and settles within `timeoutMillis`. The command leaves the process at
 * most once and never after this call settled, whatever the client is configured to do: ioredis
 * serializes a command with `toWritable` at the moment it writes it to a socket (its only write
 * path, `Redis#sendCommand`), so this command's `toWritable` counts the writes, and once it was
 * written, or once the call settled, it serializes a `PING` instead. A resend by the driver
 * (`autoResendUnfulfilledCommands`, a Cluster's delayed TRYAGAIN/CLUSTERDOWN/failover retry, a
 * Cluster node's offline queue flushed after the call timed out) thus becomes a harmless PING
 * whose reply fills the command's place in the queue.
 *
 * Classification: not written when the call settled → `applied: "no"` (and it never will be);
 * written once and refused by an error reply that means "not run" → `"no"`; anything else after
 * a write (timeout, closed connection, `ERR`, a resend the guard replaced) → `"maybe"`.
 */
export const write = (
  client: Client,
  timeoutMillis: number,
  name: string,
  args: ReadonlyArray<string>,
): Effect.Effect<unknown, WriteFailure> =>
  Effect.async<unknown, WriteFailure>((resume) => {
    const command = new Command(name, [...args], { replyEncoding: "utf8" })
    let writes = 0
    let replaced = 0
    let settled = false
    const serialize = command.toWritable.bind(command)
    command.toWritable = (socket: object) => {
      if (settled || writes > 0) {
        replaced += 1
        return PING
      }
      writes += 1
      return serialize(socket)
    }
    const finish = (effect: Effect.Effect<unknown, WriteFailure>) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resume(effect)
    }
    const failure = (cause: unknown): WriteFailure => {
      noteTopology(client, cause)
      const code = replyCode(cause)
      const refused = writes === 1 && replaced === 0 && refusedBeforeRunning(cause)
      return { applied: writes === 0 || refused ? "no" : "maybe", code, cause: scrubbed(cause) }
    }
    const timer = setTimeout(
      () => finish(Effect.fail(failure(new Error(`no answer within ${timeoutMillis} ms`)))),
      timeoutMillis,
    )
    command.promise.then(
      (reply: unknown) => {
        if (replaced === 0) return finish(Effect.succeed(reply))
        // The reply answers a PING the guard wrote in place of a resend: the first send's fate is unknown.
        finish(Effect.fail(failure(new Error("the driver tried to send the command again; the resend was suppressed"))))
      },
      (cause: unknown) => finish(Effect.fail(failure(cause))),
    )
    try {
      client.sendCommand(command)
    } catch (cause) {
      finish(Effect.fail(failure(cause)))
    }
    return Effect.sync(() => {
      settled = true
      clearTimeout(timer)
    })
  })

/**
 * A failed write, reported: StorageUnavailable when it certainly did not happen, OutcomeUnknown
 * when it may have (`entryId`: the journal entry it would have appended, if any).
 */
export const writeError = (
  what: string,
  failure: WriteFailure,
  entryId?: string,
): StorageUnavailable | OutcomeUnknown =>
  failure.applied === "no"
    ? new StorageUnavailable({
        detail: `Redis ${what} failed and was not applied: ${failure.cause.message}`,
        cause: failure.cause,
      })
    : new OutcomeUnknown({
        detail: `Redis ${what} was sent and no answer came back (${failure.cause.message}); it may have been applied`,
        cause: failure.cause,
        ...(entryId === undefined ? {} : { entryId }),
      })

/**
 * Runs a writing script with EVALSHA, and with EVAL when the server does not know it (NOSCRIPT:
 * its cache was flushed or it restarted). NOSCRIPT means the script did not run, so running it
 * with EVAL cannot apply it twice; EVAL also caches it again on that server. Each send is a
 * {@link write}.
 */
export const writeScript = (
  client: Client,
  timeoutMillis: number,
  script: Script,
  keys: ReadonlyArray<string>,
  args: ReadonlyArray<string>,
): Effect.Effect<unknown, WriteFailure> => {
  const rest = [String(keys.length), ...keys, ...args]
  return write(client, timeoutMillis, "evalsha", [script.sha, ...rest]).pipe(
    Effect.catchIf(
      (failure) => failure.applied === "no" && failure.code === "NOSCRIPT",
      () => write(client, timeoutMillis, "eval", [script.lua, ...rest]),
    ),
  )
}

const isNoScript = (cause: unknown): boolean => replyCode(cause) === "NOSCRIPT"

/** EVALSHA of a read-only script, and EVAL on NOSCRIPT (see {@link writeScript}). */
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
 * The settings of a caller's client that would make ioredis send a command again or late, each
 * with what to set instead; empty when there is none. Read from the client's effective options
 * (ioredis merges its defaults into `client.options`).
 */
export const resendRisks = (client: Client): ReadonlyArray<string> => {
  const risks: Array<string> = []
  if (isCluster(client)) {
    const options = client.options
    if (options.enableOfflineQueue !== false) {
      risks.push("enableOfflineQueue must be false (a queued command is sent when the cluster is ready again)")
    }
    if (options.maxRedirections === undefined || options.maxRedirections > 0) {
      risks.push(
        "maxRedirections must be 0 (ioredis re-sends a command after MOVED, ASK, TRYAGAIN, CLUSTERDOWN or a closed connection, possibly after it timed out)",
      )
    }
    const node = options.redisOptions ?? {}
    if (typeof options.clusterNodeRetryStrategy === "function" && node.autoResendUnfulfilledCommands !== false) {
      risks.push(
        "redisOptions.autoResendUnfulfilledCommands must be false when clusterNodeRetryStrategy is set (a node that reconnects re-sends the commands in flight)",
      )
    }
    if (typeof node.reconnectOnError === "function") {
      risks.push("redisOptions.reconnectOnError must not be set (it may re-send the command that failed)")
    }
    return risks
  }
  const options = client.options
  if (options.enableOfflineQueue !== false) {
    risks.push("enableOfflineQueue must be false (a queued command is sent after a reconnection)")
  }
  if (options.autoResendUnfulfilledCommands !== false) {
    risks.push("autoResendUnfulfilledCommands must be false (commands in flight are re-sent after a reconnection)")
  }
  if (typeof options.reconnectOnError === "function") {
    risks.push("reconnectOnError must not be set (it may re-send the command that failed)")
  }
  return risks
}

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
