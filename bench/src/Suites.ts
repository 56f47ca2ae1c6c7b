/**
 * What `pnpm bench` measures: per adapter, the library and its hand-written baseline, created
 * afresh for every scenario.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { MemoryStorage } from "@creditlock/memory"
import { SqliteStorage } from "@creditlock/sqlite"
import { type Database, freshDatabase } from "@creditlock/test-suite/postgres-server"
import { type RedisCluster, type RedisServer, startCluster, startServer } from "@creditlock/test-suite/redis-server"
import type { Target } from "./Harness.js"
import type { SharedStore } from "./Targets.js"
import { engineTarget, postgresLibrary, redisLibrary } from "./targets/Engine.js"
import { mapBaseline } from "./targets/MapBaseline.js"
import { postgresBaseline } from "./targets/PostgresBaseline.js"
import { redisBaseline } from "./targets/RedisBaseline.js"
import { sqliteBaseline } from "./targets/SqliteBaseline.js"

/** An adapter under test: how to make a library target and its baseline for one scenario. */
export interface Suite {
  readonly adapter: string
  readonly library: () => Promise<Target>
  readonly baseline: () => Promise<Target>
  /** A fresh store several processes can share, for the multi-process scenario. */
  readonly shared?: () => Promise<SharedStore>
  /** Whether the scale-out scenario (K processes on holders of their own) runs on this suite. */
  readonly scaleOut?: boolean
  /** Tears down whatever the suite started (servers, files). */
  readonly close?: () => Promise<void>
}

/** The in-memory adapter against a plain `Map`. */
export const memorySuite = (): Suite => ({
  adapter: "memory",
  library: async () => engineTarget("CreditEngine + MemoryStorage", MemoryStorage.layer()),
  baseline: async () => mapBaseline(),
})

/** The SQLite adapter on a WAL file against raw better-sqlite3 with the same `synchronous`. */
export const sqliteSuite = (synchronous: "FULL" | "NORMAL") => (): Suite => {
  const dir = mkdtempSync(join(tmpdir(), "creditlock-bench-"))
  const file = () => join(dir, `${randomUUID()}.sqlite`)
  return {
    adapter: `sqlite ${synchronous}`,
    library: async () =>
      engineTarget(
        `CreditEngine + SqliteStorage ${synchronous}`,
        SqliteStorage.layer({ filename: file(), synchronous }),
      ),
    baseline: async () => sqliteBaseline(file(), synchronous),
    shared: async () => ({ kind: "sqlite", filename: file(), synchronous }),
    close: async () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** The Redis adapter on a redis-server started for the run, against raw ioredis + Lua. */
export const redisSuite = (): Suite => {
  let server: Promise<RedisServer> | undefined
  const url = async () => {
    server ??= startServer()
    return (await server).url
  }
  const prefix = () => `bench-${randomUUID()}:`
  return {
    adapter: "redis",
    library: async () => redisLibrary(await url(), prefix()),
    baseline: async () => redisBaseline(await url(), prefix()),
    shared: async () => ({ kind: "redis", connection: await url(), keyPrefix: prefix() }),
    scaleOut: true,
    close: async () => {
      if (server !== undefined) await (await server).dispose()
    },
  }
}

/** The Redis adapter on a 3-master Redis Cluster started for the run, against raw ioredis + Lua. */
export const redisClusterSuite = (): Suite => {
  let cluster: Promise<RedisCluster> | undefined
  const nodes = async () => {
    cluster ??= startCluster()
    return (await cluster).nodes
  }
  const prefix = () => `bench-${randomUUID()}:`
  return {
    adapter: "redis cluster",
    library: async () => redisLibrary(await nodes(), prefix()),
    baseline: async () => redisBaseline(await nodes(), prefix()),
    shared: async () => ({ kind: "redis", connection: await nodes(), keyPrefix: prefix() }),
    close: async () => {
      if (cluster !== undefined) await (await cluster).dispose()
    },
  }
}

/**
 * The PostgreSQL adapter on a database created for the run on the machine's server (127.0.0.1:5432),
 * against raw pg with one statement per operation; each scenario gets fresh schemas.
 */
export const postgresSuite = (): Suite => {
  let database: Promise<Database> | undefined
  const url = async () => {
    database ??= freshDatabase()
    return (await database).url
  }
  const schema = (side: string) => `bench_${side}_${randomUUID().replaceAll("-", "")}`
  return {
    adapter: "postgres",
    library: async () => postgresLibrary(await url(), schema("lib")),
    baseline: async () => postgresBaseline(await url(), schema("raw")),
    shared: async () => ({ kind: "postgres", url: await url(), schema: schema("mp") }),
    close: async () => {
      if (database !== undefined) await (await database).drop()
    },
  }
}
