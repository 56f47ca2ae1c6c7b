/**
 * The implementation of {@link CreditLockApi} over the `CreditEngine` of @creditlock/core. Handlers
 * only translate: they check that the credential may act on the customer (403 otherwise; for
 * routes that name a customer, before anything is read), call the engine, and shape its result.
 * Every rule lives in the engine. A balance group is known only by looking it up: to a credential
 * that is not an administrator, one of another customer's is answered exactly like an unknown one
 * (404), so the routes reveal nothing about other customers.
 *
 * Balance groups are global names (Billing Care addresses holders by them alone), claimed by one
 * holder for good, first claim wins. There is no implicit alias: a holder opened without a
 * `balanceGroupId` has none, and only an administrator credential may give one, whatever its
 * value — a restricted credential could otherwise claim (squat) the alias of another customer's
 * holder, present or future.
 *
 * @module
 */

import { CreditEngine, Forbidden, HolderNotFound, type HolderRef, Storage } from "@creditlock/core"
import { type HttpApi, HttpApiBuilder } from "@effect/platform"
import { Effect, Layer } from "effect"
import { CreditLockApi } from "./Api.js"
import { type Authentication, Principal, requireAdmin, requireCustomer } from "./Auth.js"
import { ShuttingDown } from "./Problem.js"
import { Readiness } from "./Readiness.js"
import {
  CreditLimitsResponse,
  creditLimitsJson,
  creditStateJson,
  holderJson,
  journalEntryJson,
} from "./Representation.js"

const refOf = (path: HolderRef): HolderRef => ({
  customerId: path.customerId,
  holderType: path.holderType,
  holderId: path.holderId,
})

/** The `credit` group: Bento's credit API plus opening a holder and its journal. */
export const CreditLive = HttpApiBuilder.group(CreditLockApi, "credit", (handlers) =>
  Effect.gen(function* () {
    const engine = yield* CreditEngine
    return handlers
      .handle("getCredit", ({ path }) =>
        Effect.gen(function* () {
          yield* requireCustomer(path.customerId)
          const view = yield* engine.getCredit(refOf(path))
          return { data: creditStateJson(view), meta: {} }
        }),
      )
      .handle("openHolder", ({ path, payload }) =>
        Effect.gen(function* () {
          yield* requireCustomer(path.customerId)
          const ref = refOf(path)
          // Whatever its value: an alias equal to the holder id is as global as any other.
          if (payload.balanceGroupId !== undefined && !(yield* Principal).admin) {
            return yield* new Forbidden({
              detail: 'only an administrator credential ("*") may set a balanceGroupId',
            })
          }
          const opened = yield* engine.openHolder(
            ref,
            payload.balanceGroupId === undefined ? {} : { balanceGroupId: payload.balanceGroupId },
          )
          const body = { data: { holder: holderJson(ref), balanceGroupId: opened.balanceGroupId }, meta: {} }
          return opened.created ? { ...body, created: true as const } : { ...body, created: false as const }
        }),
      )
      .handle("lock", ({ path, headers }) =>
        Effect.gen(function* () {
          yield* requireCustomer(path.customerId)
          const reference = headers["idempotency-key"]
          const { credit, lock } = yield* engine.lock(refOf(path), reference === undefined ? {} : { reference })
          return {
            data: { credit: creditStateJson(credit), lock: { key: lock.key, expiry: lock.expiry, token: lock.token } },
            meta: {},
          }
        }),
      )
      .handle("modify", ({ path, headers, payload }) =>
        Effect.gen(function* () {
          yield* requireCustomer(path.customerId)
          const reference = headers["idempotency-key"]
          const result = yield* engine.modify(refOf(path), headers["x-lock-key"], {
            reason: payload.reason,
            modifications: payload.modifications,
            ...(reference === undefined ? {} : { reference }),
          })
          return { data: creditStateJson(result), meta: { entryId: result.entryId } }
        }),
      )
      .handle("extend", ({ path, payload }) =>
        Effect.gen(function* () {
          yield* requireCustomer(path.customerId)
          const { lock } = yield* engine.extendLock(refOf(path), payload.key)
          return { data: { lock: { expiry: lock.expiry, token: lock.token } }, meta: {} }
        }),
      )
      .handle("unlock", ({ path, payload }) =>
        Effect.gen(function* () {
          yield* requireCustomer(path.customerId)
          yield* engine.unlock(refOf(path), payload.key)
        }),
      )
      .handle("journal", ({ path, urlParams }) =>
        Effect.gen(function* () {
          yield* requireCustomer(path.customerId)
          const ref = refOf(path)
          const page = yield* engine.journal(ref, {
            ...(urlParams.after === undefined ? {} : { after: urlParams.after }),
            ...(urlParams.limit === undefined ? {} : { limit: urlParams.limit }),
          })
          return {
            data: { holder: holderJson(ref), entries: page.entries.map(journalEntryJson) },
            meta: { next: page.next },
          }
        }),
      )
  }),
)

/** The `customer` group: the administrative customer unlock. */
export const CustomerLive = HttpApiBuilder.group(CreditLockApi, "customer", (handlers) =>
  Effect.gen(function* () {
    const engine = yield* CreditEngine
    return handlers.handle("unlockCustomer", ({ payload }) =>
      Effect.gen(function* () {
        const principal = yield* Principal
        if (payload.customer_id !== undefined) yield* requireCustomer(payload.customer_id)
        else yield* requireAdmin("unlocking by subscription_id or orderid")
        yield* engine.unlockCustomer(
          payload.customer_id !== undefined
            ? { customerId: payload.customer_id }
            : payload.subscription_id !== undefined
              ? { subscriptionId: payload.subscription_id }
              : { orderId: payload.orderid ?? "" },
          { reason: `administrative customer unlock by ${principal.name}` },
        )
        return true as const
      }),
    )
  }),
)

/**
 * For a credential that is not an administrator, a balance group of another customer is answered
 * like an unknown one (and so would be an ambiguous lookup, should a store ever answer one).
 */
const hideOthers = <A, E extends { readonly _tag: string }, R>(
  id: string,
  effect: Effect.Effect<A, E, R>,
): Effect.Effect<A, E | HolderNotFound, R | Principal> =>
  Effect.flatMap(
    Principal,
    (principal): Effect.Effect<A, E | HolderNotFound, R> =>
      principal.admin
        ? effect
        : Effect.catchIf(
            effect,
            (e) => e._tag === "Forbidden" || e._tag === "IdempotencyConflict",
            () => Effect.fail(new HolderNotFound({ detail: `no holder has balance group "${id}"` })),
          ),
  )

/** The `billingCare` group: BRM credit limits of a balance group. */
export const BillingCareLive = HttpApiBuilder.group(CreditLockApi, "billingCare", (handlers) =>
  Effect.gen(function* () {
    const engine = yield* CreditEngine
    return handlers
      .handle("setCreditLimits", ({ path, payload }) =>
        Effect.gen(function* () {
          const principal = yield* Principal
          if (!principal.admin) {
            // The balance group names a holder; its customer decides whether this credential may act.
            const current = yield* hideOthers(path.id, engine.getCreditLimits(path.id))
            yield* hideOthers(path.id, requireCustomer(current.holder.customerId))
          }
          yield* engine.setCreditLimits(path.id, payload)
          return "Ok" as const
        }),
      )
      .handle("getCreditLimits", ({ path }) =>
        Effect.gen(function* () {
          const view = yield* hideOthers(path.id, engine.getCreditLimits(path.id))
          yield* hideOthers(path.id, requireCustomer(view.holder.customerId))
          return CreditLimitsResponse.make(
            creditLimitsJson({ ...view, balanceGroupId: view.balanceGroupId ?? path.id }),
          )
        }),
      )
  }),
)

/**
 * The `ops` group: liveness (`/healthz`, answered without touching anything) and readiness
 * (`/readyz`: not stopping, and the storage answers a ping).
 */
export const OpsLive = HttpApiBuilder.group(CreditLockApi, "ops", (handlers) =>
  Effect.gen(function* () {
    const storage = yield* Storage
    const readiness = yield* Readiness
    return handlers
      .handle("health", () => Effect.succeed({ status: "ok" as const }))
      .handle("ready", () =>
        Effect.gen(function* () {
          if (readiness.draining()) {
            return yield* new ShuttingDown({ detail: "the server is stopping; send new requests to another instance" })
          }
          yield* storage.ping
          return { status: "ok" as const }
        }),
      )
  }),
)

/** Every group of the API, implemented; needs the engine, the storage and the authentication middleware. */
export const ApiLive: Layer.Layer<HttpApi.Api, never, CreditEngine | Storage | Authentication> = HttpApiBuilder.api(
  CreditLockApi,
).pipe(Layer.provide([CreditLive, CustomerLive, BillingCareLive, OpsLive]))
