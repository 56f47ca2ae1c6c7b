import { HttpServer } from "@effect/platform"
import { ConfigProvider, Effect, Either, Layer, Logger, ManagedRuntime, Option, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { parse, usage } from "../src/Cli.js"
import { parseCredentials } from "../src/Credentials.js"
import { isPackageNotFound } from "../src/internal/importAdapter.js"
import { config, layer } from "../src/Main.js"
import { AdapterNotInstalled, DEFAULT_STORE, describeStore, parseStore } from "../src/Store.js"

const right = <A>(either: Either.Either<A, string>): A => {
  if (Either.isLeft(either)) throw new Error(either.left)
  return either.right
}
const left = <A>(either: Either.Either<A, string>): string => {
  if (Either.isRight(either)) throw new Error("expected a failure")
  return either.left
}

describe("CREDIT_STORE", () => {
  it("reads sqlite:, memory:, redis:// and redis-cluster://", () => {
    expect(right(parseStore(DEFAULT_STORE))).toEqual({ _tag: "Sqlite", filename: "./data/creditlock.sqlite" })
    expect(right(parseStore("memory:"))).toEqual({ _tag: "Memory" })
    const redis = right(parseStore("redis://user:pa55@cache.local:6380/2"))
    expect(redis._tag).toBe("Redis")
    expect(describeStore(redis)).toBe("redis://cache.local:6380/2")
    expect(describeStore(redis)).not.toContain("pa55")
    const cluster = right(parseStore("redis-cluster://:s3cret@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002"))
    expect(cluster).toMatchObject({
      _tag: "RedisCluster",
      nodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "10.0.0.2", port: 7001 },
        { host: "::1", port: 7002 },
      ],
    })
    expect(cluster._tag === "RedisCluster" && cluster.password !== undefined && Redacted.value(cluster.password)).toBe(
      "s3cret",
    )
    expect(describeStore(cluster)).not.toContain("s3cret")
  })

  it("reads postgres:// and postgresql:// URLs, keeping the password out of descriptions", () => {
    for (const scheme of ["postgres", "postgresql"]) {
      const store = right(parseStore(`${scheme}://billing:pa55@db.local:6543/credit?sslmode=require`))
      expect(store._tag).toBe("Postgres")
      expect(store._tag === "Postgres" && Redacted.value(store.url)).toBe(
        `${scheme}://billing:pa55@db.local:6543/credit?sslmode=require`,
      )
      expect(describeStore(store)).toBe(`${scheme}://db.local:6543/credit`)
      expect(String(store._tag === "Postgres" ? store.url : "")).not.toContain("pa55")
    }
    expect(right(parseStore("postgres:///credit?host=/var/run/postgresql"))._tag).toBe("Postgres")
  })

  it("refuses anything else with a message that names the variable", () => {
    for (const bad of [
      "",
      "sqlite:",
      "mysql://x",
      "postgres://",
      "postgresql:///credit",
      "redis://",
      "redis-cluster://",
      "redis-cluster://a:1,b",
      "redis-cluster://a:99999",
    ]) {
      expect(left(parseStore(bad))).toContain("CREDIT_STORE")
    }
  })
})

describe("CREDIT_CREDENTIALS", () => {
  it("reads tokens as Redacted values, usernames and customer lists", () => {
    const credentials = right(
      parseCredentials('[{"token":"abc","customers":["*"]},{"token":"def","username":"ops","customers":["c1","c2"]}]'),
    )
    expect(credentials).toHaveLength(2)
    expect(Redacted.isRedacted(credentials[0]?.token)).toBe(true)
    expect(String(credentials[0]?.token)).not.toContain("abc")
    expect(credentials[1]).toMatchObject({ username: "ops", customers: ["c1", "c2"] })
  })

  it("refuses malformed configurations without repeating a token", () => {
    const cases = [
      "not json",
      "{}",
      "[]",
      '[{"token":"secret-1 x","customers":["*"]}]',
      '[{"token":"secret-2","customers":[]}]',
      '[{"token":"secret-3","customers":["bad id"]}]',
      '[{"token":"secret-4","customers":["*"],"customer":"x"}]',
      '[{"token":"secret-5","username":"","customers":["*"]}]',
      '[{"token":"secret-6","customers":["*"]},{"token":"secret-6","customers":["c"]}]',
      '[{"token":123,"customers":["*"]}]',
      '[{"token":"secret-7","username":"ops","customers":["*"]},{"token":"secret-8","username":"ops","customers":["c"]}]',
    ]
    for (const json of cases) {
      const message = left(parseCredentials(json))
      expect(message).toContain("CREDIT_CREDENTIALS")
      expect(message).not.toMatch(/secret-\d/)
    }
  })
})

describe("server configuration", () => {
  const read = (env: Record<string, string>) =>
    Effect.runPromise(
      Effect.either(Effect.withConfigProvider(config, ConfigProvider.fromMap(new Map(Object.entries(env))))),
    )

  it("defaults to 127.0.0.1:8080 on the default SQLite store, generating a credential", async () => {
    const result = await read({})
    expect(Either.isRight(result)).toBe(true)
    if (Either.isRight(result)) {
      expect(result.right).toMatchObject({
        host: "127.0.0.1",
        port: 8080,
        store: { _tag: "Sqlite", filename: "./data/creditlock.sqlite" },
        rateLimitPerMinute: 60000,
        lockTtlSeconds: 120,
      })
      expect(Option.isNone(result.right.credentials)).toBe(true)
    }
  })

  it("reads every variable and refuses bad values", async () => {
    const result = await read({
      HOST: "0.0.0.0",
      PORT: "0",
      CREDIT_STORE: "memory:",
      CREDIT_CREDENTIALS: '[{"token":"t","customers":["*"]}]',
      CREDIT_RATE_LIMIT: "10",
      CREDIT_LOCK_TTL_SECONDS: "30",
      CREDIT_MAX_LOCK_LIFETIME_SECONDS: "300",
      CREDIT_LOCK_KEY_SECRET: "s".repeat(32),
    })
    expect(Either.isRight(result) && result.right).toMatchObject({
      host: "0.0.0.0",
      port: 0,
      store: { _tag: "Memory" },
      rateLimitPerMinute: 10,
      lockTtlSeconds: 30,
      maxLockLifetimeSeconds: Option.some(300),
    })
    expect(Either.isRight(result) && Option.map(result.right.lockKeySecret, Redacted.value)).toEqual(
      Option.some("s".repeat(32)),
    )
    for (const env of [
      { PORT: "70000" },
      { PORT: "http" },
      { CREDIT_RATE_LIMIT: "0" },
      { CREDIT_STORE: "nope:" },
      { CREDIT_MAX_LOCK_LIFETIME_SECONDS: "0" },
      { CREDIT_LOCK_KEY_SECRET: "short" },
    ]) {
      expect(Either.isLeft(await read(env))).toBe(true)
    }
  })
})

describe("CREDIT_PUBLIC_URL", () => {
  const read = (value: string) =>
    Effect.runPromise(
      Effect.either(Effect.withConfigProvider(config, ConfigProvider.fromMap(new Map([["CREDIT_PUBLIC_URL", value]])))),
    )

  it("takes an absolute http(s) URL, without its trailing slashes; unset or empty: derived", async () => {
    const ok = await read("https://Credit.Example.com/billing/")
    expect(Either.isRight(ok) && ok.right.publicUrl).toEqual(Option.some("https://credit.example.com/billing"))
    const plain = await read("http://127.0.0.1:8080")
    expect(Either.isRight(plain) && plain.right.publicUrl).toEqual(Option.some("http://127.0.0.1:8080"))
    const empty = await read("")
    expect(Either.isRight(empty) && empty.right.publicUrl).toEqual(Option.none())
  })

  it("is the servers entry of the OpenAPI document the server serves", async () => {
    const provider = ConfigProvider.fromMap(
      new Map([
        ["PORT", "0"],
        ["CREDIT_STORE", "memory:"],
        ["CREDIT_CREDENTIALS", '[{"token":"public-url-token","customers":["*"]}]'],
        ["CREDIT_PUBLIC_URL", "https://credit.example.com/billing"],
      ]),
    )
    const mainConfig = Effect.runSync(Effect.withConfigProvider(config, provider))
    const runtime = ManagedRuntime.make(
      layer(mainConfig).pipe(Layer.provide(Logger.replace(Logger.defaultLogger, Logger.none))),
    )
    try {
      const address = await runtime.runPromise(Effect.map(HttpServer.HttpServer, (server) => server.address))
      const port = address._tag === "TcpAddress" ? address.port : 0
      const spec = (await (await fetch(`http://127.0.0.1:${port}/openapi.json`)).json()) as { servers: unknown }
      expect(spec.servers).toEqual([{ url: "https://credit.example.com/billing" }])
    } finally {
      await runtime.dispose()
    }
  })

  it("refuses anything else, naming the variable", async () => {
    for (const bad of [
      "credit.example.com",
      "/billing",
      "ftp://credit.example.com",
      "https://u:p@x.example",
      "https://x.example/?a=1",
      "https://x.example/#top",
    ]) {
      const result = await read(bad)
      expect(Either.isLeft(result), bad).toBe(true)
      expect(Either.isLeft(result) && String(result.left), bad).toContain("CREDIT_PUBLIC_URL")
    }
  })
})

describe("adapter packages", () => {
  it("tells a package that is not installed from one whose own dependency is missing", async () => {
    const missing: string = "@creditlock/not-installed"
    const error: unknown = await import(missing).then(
      () => undefined,
      (cause: unknown) => cause,
    )
    expect(isPackageNotFound(error, "@creditlock/not-installed")).toBe(true)
    expect(isPackageNotFound(error, "@creditlock/sqlite")).toBe(false)
    expect(isPackageNotFound(new Error("Cannot find package '@creditlock/sqlite'"), "@creditlock/sqlite")).toBe(false)
    expect(isPackageNotFound(undefined, "@creditlock/sqlite")).toBe(false)
  })

  it("names the package to install when a store's adapter is missing", () => {
    const error = new AdapterNotInstalled({ store: "sqlite:", packageName: "@creditlock/sqlite" })
    expect(error.message).toContain("CREDIT_STORE sqlite:")
    expect(error.message).toContain("npm install @creditlock/sqlite")
    expect(error.message).toContain("pnpm add @creditlock/sqlite")
  })
})

describe("command line", () => {
  it("serves with no command or serve, prints help, and refuses anything else", () => {
    expect(parse([])).toEqual({ _tag: "Serve" })
    expect(parse(["serve"])).toEqual({ _tag: "Serve" })
    for (const help of ["help", "--help", "-h"]) expect(parse([help])).toEqual({ _tag: "Help" })
    expect(parse(["srve"])).toEqual({ _tag: "UsageError", message: "unknown command: srve" })
    expect(parse(["serve", "--port", "1"])._tag).toBe("UsageError")
    expect(usage).toContain("Usage: creditlock [serve]")
    for (const name of [
      "HOST",
      "PORT",
      "CREDIT_STORE",
      "CREDIT_CREDENTIALS",
      "CREDIT_RATE_LIMIT",
      "CREDIT_LOCK_TTL_SECONDS",
      "CREDIT_MAX_LOCK_LIFETIME_SECONDS",
      "CREDIT_LOCK_KEY_SECRET",
    ]) {
      expect(usage).toContain(name)
    }
  })
})
