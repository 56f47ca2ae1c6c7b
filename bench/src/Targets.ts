/**
 * Benchmark targets by description, so a child process can build the same target as its parent.
 *
 * @module
 */
import { SqliteStorage } from "@creditlock/sqlite"
import type { Target } from "./Harness.js"
import { engineTarget, postgresLibrary, redisLibrary } from "./targets/Engine.js"
import { postgresBaseline } from "./targets/PostgresBaseline.js"
import { type RedisConnection, redisBaseline } from "./targets/RedisBaseline.js"
import { sqliteBaseline } from "./targets/SqliteBaseline.js"

/** A target that several processes can open: a SQLite file, a Redis server or Cluster, a PostgreSQL database. */
export type SharedStore =
  | { readonly kind: "sqlite"; readonly filename: string; readonly synchronous: "FULL" | "NORMAL" }
  | { readonly kind: "redis"; readonly connection: RedisConnection; readonly keyPrefix: string }
  | { readonly kind: "postgres"; readonly url: string; readonly schema: string }

/** Library or baseline. */
export type Side = "library" | "baseline"

/** Builds the target for a shared store. */
export const sharedTarget = (store: SharedStore, side: Side): Target => {
  switch (store.kind) {
    case "sqlite":
      return side === "library"
        ? engineTarget(
            `CreditEngine + SqliteStorage ${store.synchronous}`,
            SqliteStorage.layer({ filename: store.filename, synchronous: store.synchronous }),
          )
        : sqliteBaseline(store.filename, store.synchronous)
    case "redis":
      return side === "library"
        ? redisLibrary(store.connection, store.keyPrefix)
        : redisBaseline(store.connection, store.keyPrefix)
    case "postgres":
      // The two sides of a run get schemas of their own (the adapter's tables are its own).
      return side === "library"
        ? postgresLibrary(store.url, store.schema)
        : postgresBaseline(store.url, `${store.schema}_raw`)
  }
}
