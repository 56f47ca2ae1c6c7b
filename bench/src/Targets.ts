/**
 * Benchmark targets by description, so a child process can build the same target as its parent.
 *
 * @module
 */
import { RedisStorage } from "@creditlock/redis"
import { SqliteStorage } from "@creditlock/sqlite"
import type { Target } from "./Harness.js"
import { engineTarget } from "./targets/Engine.js"
import { redisBaseline } from "./targets/RedisBaseline.js"
import { sqliteBaseline } from "./targets/SqliteBaseline.js"

/** A target that several processes can open: a SQLite file (or, later, a Redis server). */
export type SharedStore =
  | { readonly kind: "sqlite"; readonly filename: string; readonly synchronous: "FULL" | "NORMAL" }
  | { readonly kind: "redis"; readonly url: string; readonly keyPrefix: string }

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
        ? engineTarget(
            "CreditEngine + RedisStorage",
            RedisStorage.layer({ url: store.url, keyPrefix: store.keyPrefix }),
          )
        : redisBaseline(store.url, store.keyPrefix)
  }
}
