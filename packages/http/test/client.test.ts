import { CreditLocked, LockKeyMismatch, Unauthorized } from "@creditlock/core"
import { FetchHttpClient, type HttpClient } from "@effect/platform"
import { Effect, Either, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import * as Client from "../src/Client.js"
import { ADMIN, serverPerFile, TRACK } from "./harness.js"

const h = serverPerFile()

const run = <A, E>(effect: Effect.Effect<A, E, HttpClient.HttpClient>) =>
  Effect.runPromise(Effect.provide(effect, FetchHttpClient.layer))

describe("typed client", () => {
  it("runs the credit flow with typed requests and responses", async () => {
    const path = { customerId: "cus_client", holderType: "contracts", holderId: "a?b#c%d&e" } as const
    const result = await run(
      Effect.gen(function* () {
        const client = yield* Client.make({ baseUrl: h.base, credential: { token: Redacted.make(ADMIN.token) } })
        const opened = yield* client.credit.openHolder({ path, payload: { balanceGroupId: "bg-client" } })
        const reopened = yield* client.credit.openHolder({ path, payload: {} })
        const { data } = yield* client.credit.lock({ path, headers: {} })
        const modified = yield* client.credit.modify({
          path,
          headers: { "x-lock-key": data.lock.key, "idempotency-key": "client-1" },
          payload: {
            reason: "top-up",
            modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: 700 } }],
          },
        })
        const credit = yield* client.credit.getCredit({ path })
        const journal = yield* client.credit.journal({ path, urlParams: { limit: 10 } })
        yield* client.credit.unlock({ path, payload: { key: data.lock.key } })
        const limits = yield* client.billingCare.setCreditLimits({
          path: { id: "bg-client" },
          payload: { resourceId: 826, limit: "3.00" },
        })
        const readLimits = yield* client.billingCare.getCreditLimits({ path: { id: "bg-client" } })
        const health = yield* client.ops.health()
        return { opened, reopened, data, modified, credit, journal, limits, readLimits, health }
      }),
    )
    expect(result.opened.created).toBe(true)
    expect(result.reopened.created).toBe(false)
    expect(result.opened.data.holder).toEqual({ type: "contract", id: "a?b#c%d&e" })
    expect(Redacted.isRedacted(result.data.lock.key)).toBe(true)
    expect(result.data.lock.expiry).toBeInstanceOf(Date)
    expect(result.modified.meta.entryId).toMatch(/^[0-9a-f-]{36}$/)
    expect(result.credit.data.current.credit[0]?.amount).toEqual({ currencyCode: "GBP", value: 700 })
    expect(result.credit.data.current.credit[0]?.updatedAt).toBeInstanceOf(Date)
    expect(result.journal.data.entries.map((e) => e.kind)).toEqual(["opened", "modification"])
    expect(result.limits).toBe("Ok")
    expect(result.readLimits.data.limits[0]?.limit).toBe("3.00")
    expect(result.health).toEqual({ status: "ok" })
  })

  it("fails with the engine's error classes", async () => {
    const path = { customerId: "cus_client", holderType: "customers", holderId: "cus_client" } as const
    const outcome = await run(
      Effect.gen(function* () {
        const client = yield* Client.make({
          baseUrl: h.base,
          credential: { token: TRACK.token, username: TRACK.username },
        })
        yield* client.credit.openHolder({ path, payload: {} })
        yield* client.credit.lock({ path, headers: {} })
        const locked = yield* Effect.either(client.credit.lock({ path, headers: {} }))
        const mismatch = yield* Effect.either(
          client.credit.unlock({ path, payload: { key: Redacted.make("not-the-key") } }),
        )
        const released = yield* client.customer.unlockCustomer({ payload: { customer_id: "cus_client" } })
        const anonymous = yield* Client.make({ baseUrl: h.base })
        const unauthorized = yield* Effect.either(anonymous.credit.getCredit({ path }))
        const recovered = yield* client.credit.lock({ path, headers: {} }).pipe(
          Effect.as("locked again"),
          Effect.catchTag("CreditLocked", () => Effect.succeed("still locked")),
        )
        return { locked, mismatch, released, unauthorized, recovered }
      }),
    )
    expect(Either.isLeft(outcome.locked) && outcome.locked.left).toBeInstanceOf(CreditLocked)
    expect(Either.isLeft(outcome.mismatch) && outcome.mismatch.left).toBeInstanceOf(LockKeyMismatch)
    expect(outcome.released).toBe(true)
    expect(Either.isLeft(outcome.unauthorized) && outcome.unauthorized.left).toBeInstanceOf(Unauthorized)
    expect(outcome.recovered).toBe("locked again")
  })
})
