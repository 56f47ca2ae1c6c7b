import { conformance } from "@creditlock/test-suite"
import { type RedisServer, requireRedis, startServer } from "@creditlock/test-suite/redis-server"
import { Layer } from "effect"
import { afterAll, beforeAll } from "vitest"
import { RedisStorage } from "../src/index.js"
import { multiClientTests } from "./Load.js"

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

multiClientTests("redis (standalone)", storage)
