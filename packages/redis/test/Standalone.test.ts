import { conformance } from "@creditlock/test-suite"
import { type RedisServer, requireRedis, startServer } from "@creditlock/test-suite/redis-server"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { afterAll, beforeAll } from "vitest"
import { RedisStorage } from "../src/index.js"
import { multiClientRun } from "./Load.js"

// Fails the whole file, before any test is collected, when redis-server or redis-cli is missing.
requireRedis()

let server: RedisServer | undefined

beforeAll(async () => {
  server = await startServer()
})

afterAll(async () => {
  await server?.dispose()
})

const url = () => {
  if (server === undefined) throw new Error("the Redis server did not start")
  return server.url
}

const storage = Layer.suspend(() => RedisStorage.layer({ url: url(), keyPrefix: "conformance:" }))

conformance("redis (standalone)", storage)

describe("redis (standalone): several clients", () => {
  it.live(
    "independent clients looping lock → modify → unlock on shared holders lose nothing",
    () =>
      Effect.gen(function* () {
        const result = yield* multiClientRun(storage, 6, 40)
        expect(result.refused).toBeGreaterThan(0)
      }),
    60_000,
  )
})
