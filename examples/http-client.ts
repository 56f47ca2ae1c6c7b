/**
 * The typed client: the same API definition as the server, so requests and responses are typed
 * and failures arrive as the engine's error classes. This example starts its own server on a free
 * port (over the in-memory store) and talks to it.
 * Run with `pnpm exec tsx examples/http-client.ts`.
 */

import { CreditEngine } from "@creditlock/core"
import { Client, Server } from "@creditlock/http"
import { MemoryStorage } from "@creditlock/memory"
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { Console, Effect, Layer, Redacted } from "effect"

const token = Redacted.make("example-client-token")

const ServerLive = Server.layerServer({
  host: "127.0.0.1",
  port: 0,
  credentials: [{ token, customers: ["*"] }],
  logRequests: false,
}).pipe(Layer.provide(CreditEngine.layer()), Layer.provide(MemoryStorage.layer()))

const program = Effect.gen(function* () {
  const { address } = yield* HttpServer.HttpServer
  const port = address._tag === "TcpAddress" ? address.port : 0
  const client = yield* Client.make({ baseUrl: `http://127.0.0.1:${port}`, credential: { token } })

  const path = { customerId: "cus_1001", holderType: "contracts", holderId: "sub_42" } as const
  const opened = yield* client.credit.openHolder({ path, payload: {} })
  yield* Console.log(`opened: ${opened.created}`)

  const { data } = yield* client.credit.lock({ path, headers: {} })
  const result = yield* client.credit.modify({
    path,
    headers: { "x-lock-key": data.lock.key, "idempotency-key": "invoice-2026-11" },
    payload: {
      reason: "Top-up",
      modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: 2500 } }],
    },
  })
  const gbp = result.data.current.credit.find((c) => c.amount.currencyCode === "GBP")
  yield* Console.log(`GBP credit: ${gbp?.amount.value} (journal entry ${result.meta.entryId})`)

  // A second lock while the first lives is refused; the failure is the engine's CreditLocked.
  yield* client.credit.lock({ path, headers: {} }).pipe(
    Effect.flatMap(() => Console.log("second lock granted")),
    Effect.catchTag("CreditLocked", (error) => Console.log(`second lock refused: ${error.code}`)),
  )

  yield* client.credit.unlock({ path, payload: { key: data.lock.key } })
  const journal = yield* client.credit.journal({ path, urlParams: {} })
  yield* Console.log(`journal: ${journal.data.entries.map((e) => e.kind).join(", ")}`)
})

program.pipe(Effect.provide(ServerLive), Effect.provide(FetchHttpClient.layer), Effect.runPromise)
