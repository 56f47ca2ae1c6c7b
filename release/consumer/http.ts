// Type-checked by release/test/consumer.test.ts (tsc --noEmit, strict, under node16 and bundler)
// in a project that installed the packed tarballs: the HTTP package as a service mounts it
// (createCreditHandler with plain credentials, the web handler) and calls it (the typed client).
import { createServer } from "node:http"
import { Client, type CreditHandler, createCreditHandler, Server } from "@creditlock/http"
import { MemoryStorage } from "@creditlock/memory"
import { FetchHttpClient } from "@effect/platform"
import { Effect } from "effect"

export const mount = async (): Promise<CreditHandler> => {
  const credit = await createCreditHandler({
    storage: MemoryStorage.layer(),
    credentials: [
      { token: "admin-token", customers: ["*"] },
      { token: "t", username: "trackfinity", customers: ["c"] },
    ],
    engine: { lockTtl: "30 seconds", maxLockLifetime: "5 minutes" },
    maxBodyBytes: 32 * 1024,
  })
  createServer(credit.handler).listen(0)
  return credit
}

export const web: { readonly handler: (request: Request) => Promise<Response> } = Server.toWebHandler({
  storage: MemoryStorage.layer(),
  credentials: [],
})

export const lockOverHttp = Effect.gen(function* () {
  const client = yield* Client.make({ baseUrl: "http://127.0.0.1:8080", credential: { token: "admin-token" } })
  const path = { customerId: "c", holderType: "contracts" as const, holderId: "s" }
  const { data } = yield* client.credit.lock({ path, headers: {} })
  const extended = yield* client.credit.extend({ path, payload: { key: data.lock.key } })
  const token: number = extended.data.lock.token
  return token
}).pipe(Effect.provide(FetchHttpClient.layer))
