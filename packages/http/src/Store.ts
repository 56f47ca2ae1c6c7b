/**
 * The storage the server runs on, chosen by one string (the `CREDIT_STORE` environment variable):
 *
 * | value | storage |
 * | --- | --- |
 * | `sqlite:<path>` (default `sqlite:./data/creditlock.sqlite`) | @creditlock/sqlite on that file; its folder is created |
 * | `memory:` | @creditlock/memory; lost when the process ends |
 * | `redis://[user][:password]@host:port[/db]`, `rediss://…` | @creditlock/redis, standalone |
 * | `redis-cluster://[user][:password]@host:port,host:port,…` | @creditlock/redis, Cluster (startup nodes) |
 *
 * An adapter package is loaded only when its store is chosen, so a server on `memory:` never loads
 * the SQLite native addon or the Redis client.
 *
 * @module
 */
import { mkdirSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { type Storage, StorageUnavailable } from "@creditlock/core"
import { MemoryStorage } from "@creditlock/memory"
import { Effect, Either, Layer, Redacted } from "effect"

/** The store used when `CREDIT_STORE` is not set. */
export const DEFAULT_STORE = "sqlite:./data/creditlock.sqlite"

/** A parsed store choice. */
export type StoreConfig =
  | { readonly _tag: "Memory" }
  | { readonly _tag: "Sqlite"; readonly filename: string }
  | { readonly _tag: "Redis"; readonly url: Redacted.Redacted<string>; readonly display: string }
  | {
      readonly _tag: "RedisCluster"
      readonly nodes: ReadonlyArray<{ readonly host: string; readonly port: number }>
      readonly username?: string | undefined
      readonly password?: Redacted.Redacted<string> | undefined
    }

const hostPort = (text: string): { host: string; port: number } | undefined => {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/\s]+):(\d{1,5})$/.exec(text)
  if (match === null) return undefined
  const port = Number(match[2])
  if (port < 1 || port > 65535) return undefined
  return { host: (match[1] ?? "").replace(/^\[|\]$/g, ""), port }
}

/** Reads a `CREDIT_STORE` value. Error messages never repeat a password. */
export const parseStore = (text: string): Either.Either<StoreConfig, string> => {
  const value = text.trim()
  if (value === "memory:" || value === "memory") return Either.right({ _tag: "Memory" })
  if (value.startsWith("sqlite:")) {
    const filename = value.slice("sqlite:".length)
    if (filename === "")
      return Either.left("CREDIT_STORE sqlite: needs a file path, e.g. sqlite:./data/creditlock.sqlite")
    return Either.right({ _tag: "Sqlite", filename })
  }
  if (value.startsWith("redis://") || value.startsWith("rediss://")) {
    let url: URL
    try {
      url = new URL(value)
    } catch {
      return Either.left("CREDIT_STORE is not a valid redis:// URL")
    }
    if (url.hostname === "") return Either.left("CREDIT_STORE redis:// needs a host")
    const display = `${url.protocol}//${url.host}${url.pathname === "/" ? "" : url.pathname}`
    return Either.right({ _tag: "Redis", url: Redacted.make(value), display })
  }
  if (value.startsWith("redis-cluster://")) {
    const rest = value.slice("redis-cluster://".length)
    const at = rest.lastIndexOf("@")
    const userinfo = at === -1 ? undefined : rest.slice(0, at)
    const hosts = at === -1 ? rest : rest.slice(at + 1)
    const nodes = hosts.split(",").map((h) => hostPort(h.trim()))
    if (hosts === "" || nodes.some((n) => n === undefined)) {
      return Either.left("CREDIT_STORE redis-cluster:// needs host:port[,host:port…]")
    }
    let username: string | undefined
    let password: Redacted.Redacted<string> | undefined
    if (userinfo !== undefined) {
      const colon = userinfo.indexOf(":")
      const user = decodeURIComponent(colon === -1 ? userinfo : userinfo.slice(0, colon))
      username = user === "" ? undefined : user
      password = colon === -1 ? undefined : Redacted.make(decodeURIComponent(userinfo.slice(colon + 1)))
    }
    return Either.right({
      _tag: "RedisCluster",
      nodes: nodes.filter((n) => n !== undefined),
      ...(username === undefined ? {} : { username }),
      ...(password === undefined ? {} : { password }),
    })
  }
  return Either.left(
    "CREDIT_STORE must be sqlite:<path>, memory:, redis://host:port or redis-cluster://host:port,host:port",
  )
}

/** A description of the store for logs: no password. */
export const describeStore = (config: StoreConfig): string => {
  switch (config._tag) {
    case "Memory":
      return "memory: (in-process; lost on exit)"
    case "Sqlite":
      return `sqlite:${resolve(config.filename)}`
    case "Redis":
      return config.display
    case "RedisCluster":
      return `redis-cluster://${config.nodes.map((n) => `${n.host}:${n.port}`).join(",")}`
  }
}

const loadFailed = (what: string) => (cause: unknown) =>
  new StorageUnavailable({ detail: `could not load the ${what} adapter`, cause })

/** The `Storage` layer for a store choice. A SQLite file's folder is created when missing. */
export const layer = (config: StoreConfig): Layer.Layer<Storage, StorageUnavailable> => {
  switch (config._tag) {
    case "Memory":
      return MemoryStorage.layer()
    case "Sqlite":
      return Layer.unwrapEffect(
        Effect.gen(function* () {
          if (config.filename !== ":memory:") {
            yield* Effect.try({
              try: () => mkdirSync(dirname(resolve(config.filename)), { recursive: true }),
              catch: (cause) =>
                new StorageUnavailable({ detail: `could not create the folder of ${config.filename}`, cause }),
            })
          }
          const { SqliteStorage } = yield* Effect.tryPromise({
            try: () => import("@creditlock/sqlite"),
            catch: loadFailed("SQLite"),
          })
          return SqliteStorage.layer({ filename: config.filename })
        }),
      )
    case "Redis":
    case "RedisCluster":
      return Layer.unwrapEffect(
        Effect.map(
          Effect.tryPromise({ try: () => import("@creditlock/redis"), catch: loadFailed("Redis") }),
          ({ RedisStorage }) =>
            config._tag === "Redis"
              ? RedisStorage.layer({ url: config.url })
              : RedisStorage.layer({
                  nodes: config.nodes,
                  ...(config.username === undefined ? {} : { username: config.username }),
                  ...(config.password === undefined ? {} : { password: config.password }),
                }),
        ),
      )
  }
}
