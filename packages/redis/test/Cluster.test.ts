import { randomUUID } from "node:crypto"
import { CreditEngine, type HolderRef } from "@creditlock/core"
import { change, conformance, contract, customerHolder, engineWith, freshCustomer } from "@creditlock/test-suite"
import { type RedisCluster, requireRedis, startCluster } from "@creditlock/test-suite/redis-server"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Cluster } from "ioredis"
import { afterAll, beforeAll } from "vitest"
import { RedisStorage } from "../src/index.js"
import { escapeId, keyLayout } from "../src/internal/keys.js"
import { multiClientTests } from "./Load.js"

// Fails the whole file, before any test is collected, when redis-server or redis-cli is missing.
requireRedis()

let cluster: RedisCluster | undefined
let inspector: Cluster | undefined

beforeAll(async () => {
  cluster = await startCluster()
  inspector = new Cluster([...cluster.nodes])
  await inspector.ping()
})

afterAll(async () => {
  await inspector?.quit()
  await cluster?.dispose()
})

const nodes = () => {
  if (cluster === undefined) throw new Error("the Redis Cluster did not start")
  return cluster.nodes
}

const raw = (): Cluster => {
  if (inspector === undefined) throw new Error("the Redis Cluster did not start")
  return inspector
}

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

const storage = Layer.suspend(() => RedisStorage.layer({ nodes: nodes(), keyPrefix: "conformance:" }))

conformance("redis (cluster)", storage)

/** Every key under `prefix` on every master, with the port of the master holding it. */
const keysByNode = (prefix: string) =>
  promise(async () =>
    (
      await Promise.all(
        raw()
          .nodes("master")
          .map(async (node) => (await node.keys(`${prefix}*`)).map((key) => ({ key, port: node.options.port }))),
      )
    ).flat(),
  )

describe("redis (cluster): layout and maintenance", () => {
  const withEngine = <A, E>(prefix: string, effect: Effect.Effect<A, E, CreditEngine>) =>
    Effect.provide(effect, engineWith(RedisStorage.layer({ nodes: nodes(), keyPrefix: prefix })))

  it.live("every key of a customer hashes to one slot; customers spread over the masters", () => {
    const prefix = `slots-${randomUUID()}:`
    const customers = [
      ...Array.from({ length: 12 }, () => freshCustomer()),
      "}",
      "{}",
      `{${randomUUID()}}`,
      `%7D:${randomUUID()}`,
    ]
    return withEngine(
      prefix,
      Effect.gen(function* () {
        const engine = yield* CreditEngine
        for (const customerId of customers) {
          const sub = contract(customerId, `sub-${randomUUID()}`)
          yield* engine.openHolder(sub)
          yield* engine.openHolder(customerHolder(customerId))
          const { lock } = yield* engine.lock(sub)
          yield* engine.modify(sub, lock.key, change("GBP", 5, "slots", `ref-${randomUUID()}`))
        }
        const found = yield* keysByNode(prefix)
        const ports = new Set<number | undefined>()
        for (const customerId of customers) {
          const mine = found.filter((f) => f.key.startsWith(`${prefix}cl:{${escapeId(customerId)}}:`))
          // holder, journal and id map of both holders, the contract's reference map, and the
          // customer index (neither holder has a balance-group alias: there is no implicit one)
          expect(mine).toHaveLength(8)
          const slots = yield* Effect.forEach(mine, (f) => promise(() => raw().cluster("KEYSLOT", f.key)))
          expect(new Set(slots).size).toBe(1)
          expect(new Set(mine.map((f) => f.port)).size).toBe(1)
          ports.add(mine[0]?.port)
        }
        expect(ports.size).toBeGreaterThan(1)
      }),
    )
  })

  it.live("rebuildIndexes scans every master and restores the cross-slot pointers", () => {
    const prefix = `rebuild-${randomUUID()}:`
    return withEngine(
      prefix,
      Effect.gen(function* () {
        const engine = yield* CreditEngine
        const holders: Array<{ ref: HolderRef; balanceGroupId: string; reference: string }> = []
        for (let i = 0; i < 6; i++) {
          const ref = contract()
          const balanceGroupId = `bg-${randomUUID()}`
          const reference = `order-${randomUUID()}`
          yield* engine.openHolder(ref, { balanceGroupId })
          const { lock } = yield* engine.lock(ref)
          yield* engine.modify(ref, lock.key, change("EUR", 2, "rebuild", reference))
          holders.push({ ref, balanceGroupId, reference })
        }
        // The cross-slot pointers and the claims are lost, and so are the claims' confirmations.
        const pointers = (yield* keysByNode(prefix)).filter(
          (f) => (f.key.includes(":ix:") && !f.key.endsWith(":ix:customer")) || f.key.includes(":bg"),
        )
        expect(new Set(pointers.map((p) => p.port)).size).toBeGreaterThan(1)
        expect(pointers.filter((p) => p.key.endsWith("}:bg"))).toHaveLength(6)
        yield* Effect.forEach(pointers, (p) => promise(() => raw().del(p.key)))
        for (const h of holders) {
          expect((yield* Effect.flip(engine.getCreditLimits(h.balanceGroupId)))._tag).toBe("HolderNotFound")
        }

        const report = yield* RedisStorage.rebuildIndexes(raw(), { keyPrefix: prefix })
        // per holder: customer, subscription, two entry ids, one reference; and its claim
        expect(report).toEqual({
          holders: 6,
          entries: 12,
          indexed: 30,
          added: 24,
          claims: 6,
          claimsAdded: 6,
          claimConflicts: [],
        })
        for (const h of holders) {
          expect((yield* engine.getCreditLimits(h.balanceGroupId)).holder).toEqual(h.ref)
          expect((yield* engine.unlockCustomer({ orderId: h.reference })).customerId).toBe(h.ref.customerId)
          expect((yield* engine.unlockCustomer({ subscriptionId: h.ref.holderId })).customerId).toBe(h.ref.customerId)
        }
        expect(keyLayout(prefix).holderPattern).toBe(`${prefix}cl:{*}:h:*`)
      }),
    )
  })

  it.live("after SCRIPT FLUSH on every master, operations go on", () =>
    withEngine(
      `flush-${randomUUID()}:`,
      Effect.gen(function* () {
        const engine = yield* CreditEngine
        const refs = Array.from({ length: 6 }, () => contract())
        for (const ref of refs) yield* engine.openHolder(ref)
        yield* Effect.forEach(raw().nodes("master"), (node) => promise(() => node.script("FLUSH")))
        for (const ref of refs) {
          const { lock } = yield* engine.lock(ref)
          yield* engine.modify(ref, lock.key, change("GBP", 4, "after flush", "same"))
          expect((yield* engine.modify(ref, lock.key, change("GBP", 4, "after flush", "same"))).replayed).toBe(true)
          yield* engine.unlock(ref, lock.key)
        }
      }),
    ),
  )
})

multiClientTests("redis (cluster)", storage)
