/**
 * The storage the server runs on, chosen by one string (the `CREDIT_STORE` environment variable):
 *
 * | value | storage | package |
 * | --- | --- | --- |
 * | `sqlite:<path>` (default `sqlite:./data/creditlock.sqlite`) | SQLite on that file; its folder is created | @creditlock/sqlite |
 * | `memory:` | in-process; lost when the process ends | @creditlock/memory (always installed) |
 * | `redis://[user][:password]@host:port[/db]`, `rediss://…` | Redis, standalone | @creditlock/redis |
 * | `redis-cluster://[user][:password]@host:port,host:port,…` | Redis Cluster (startup nodes) | @creditlock/redis |
 * | `postgres://[user][:password]@host[:port]/database[?…]`, `postgresql://…` | PostgreSQL (schema `creditlock`) | @creditlock/postgres |
 *
 * @creditlock/sqlite, @creditlock/redis and @creditlock/postgres are optional peer dependencies of this package: a
 * user installs the one their store needs. An adapter is imported only when its store is chosen,
 * so a server on `memory:` never loads the SQLite native addon or the Redis client; choosing a
 * store whose package is not installed fails at start with {@link AdapterNotInstalled}, which
 * names the package to install.
 *
 * @module
 */
import { mkdirSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { type Storage, StorageUnavailable } from "@creditlock/core"
import { MemoryStorage } from "@creditlock/memory"
import { Effect, Either, Layer, Redacted, Schema } from "effect"
import { isPackageNotFound } from "./internal/importAdapter.js"

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
  | { readonly _tag: "Postgres"; readonly url: Redacted.Redacted<string>; readonly display: string }

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
  if (value.startsWith("postgres://") || value.startsWith("postgresql://")) {
    let url: URL
    try {
      url = new URL(value)
    } catch {
      return Either.left("CREDIT_STORE is not a valid postgres:// URL")
    }
    // A host may also come from ?host=… (a Unix socket folder); without either there is nothing to reach.
    if (url.hostname === "" && !url.searchParams.has("host"))
      return Either.left("CREDIT_STORE postgres:// needs a host")
    const display = `${url.protocol}//${url.host}${url.pathname === "/" ? "" : url.pathname}`
    return Either.right({ _tag: "Postgres", url: Redacted.make(value), display })
  }
  return Either.left(
    "CREDIT_STORE must be sqlite:<path>, memory:, redis://host:port, redis-cluster://host:port,host:port or postgres://user@host:port/database",
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
    case "Postgres":
      return config.display
  }
}

/**
 * The store `CREDIT_STORE` names needs an adapter package that is not installed. The message names
 * the package and the command that installs it.
 */
export class AdapterNotInstalled extends Schema.TaggedError<AdapterNotInstalled>()("AdapterNotInstalled", {
  /** The kind of store asked for, without its address or credentials: `sqlite:`, `redis://`, `redis-cluster://`, `postgres://`. */
  store: Schema.String,
  /** The package that provides it, e.g. `@creditlock/sqlite`. */
  packageName: Schema.String,
}) {
  override get message(): string {
    return (
      `CREDIT_STORE ${this.store}… needs the package ${this.packageName}, which is not installed. ` +
      `Install it next to @creditlock/server (npm install ${this.packageName}, or pnpm add ${this.packageName}), ` +
      "or choose another CREDIT_STORE (memory: needs nothing more)."
    )
  }
}

/**
 * Imports an adapter package, an optional peer dependency: not installed → AdapterNotInstalled;
 * any other failure to load it (a dependency of the adapter missing, a broken install) →
 * StorageUnavailable with the cause.
 */
const importAdapter = <A>(
  store: string,
  packageName: string,
  load: () => Promise<A>,
): Effect.Effect<A, AdapterNotInstalled | StorageUnavailable> =>
  Effect.tryPromise({
    try: load,
    catch: (cause) =>
      isPackageNotFound(cause, packageName)
        ? new AdapterNotInstalled({ store, packageName })
        : new StorageUnavailable({ detail: `could not load ${packageName}`, cause }),
  })

/**
 * The `Storage` layer for a store choice. A SQLite file's folder is created when missing. Fails
 * with AdapterNotInstalled when the store's adapter package is not installed, and with
 * StorageUnavailable when the store cannot be opened.
 */
export const layer = (config: StoreConfig): Layer.Layer<Storage, StorageUnavailable | AdapterNotInstalled> => {
  switch (config._tag) {
    case "Memory":
      return MemoryStorage.layer()
    case "Sqlite":
      return Layer.unwrapEffect(
        Effect.gen(function* () {
          const { SqliteStorage } = yield* importAdapter(
            "sqlite:",
            "@creditlock/sqlite",
            () => import("@creditlock/sqlite"),
          )
          if (config.filename !== ":memory:") {
            yield* Effect.try({
              try: () => mkdirSync(dirname(resolve(config.filename)), { recursive: true }),
              catch: (cause) =>
                new StorageUnavailable({ detail: `could not create the folder of ${config.filename}`, cause }),
            })
          }
          return SqliteStorage.layer({ filename: config.filename })
        }),
      )
    case "Redis":
    case "RedisCluster":
      return Layer.unwrapEffect(
        Effect.map(
          importAdapter(
            config._tag === "Redis" ? "redis://" : "redis-cluster://",
            "@creditlock/redis",
            () => import("@creditlock/redis"),
          ),
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
    case "Postgres":
      return Layer.unwrapEffect(
        Effect.map(
          importAdapter("postgres://", "@creditlock/postgres", () => import("@creditlock/postgres")),
          ({ PostgresStorage }) => PostgresStorage.layer({ connectionString: config.url }),
        ),
      )
  }
}
