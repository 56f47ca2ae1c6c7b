import { CreditEngine } from "@creditlock/core"
import { type HolderRef, holderKey, Storage } from "@creditlock/core/storage"
import { change, contract, engineWith } from "@creditlock/test-suite"
import {
  awaitClusterState,
  type RedisServer,
  requireRedis,
  startCluster,
  startServer,
} from "@creditlock/test-suite/redis-server"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Schedule } from "effect"
import { Cluster, Redis } from "ioredis"
import { RedisStorage } from "../src/index.js"
import { emptyLog, multiClientRun, runWorker, sharedHolders, wholeJournal } from "./Load.js"

// Fails the whole file, before any test is collected, when redis-server or redis-cli is missing.
requireRedis()

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

/** A server of the test's own, disposed when the test ends. */
const server = (args: ReadonlyArray<string> = []) =>
  Effect.acquireRelease(
    promise(() => startServer({ args })),
    (s) => promise(() => s.dispose()),
  )

/** A plain client for inspecting and poking the server, closed when the test ends. */
const rawClient = (s: RedisServer) =>
  Effect.acquireRelease(
    Effect.sync(() => new Redis(s.url)),
    (client) => Effect.sync(() => client.disconnect()),
  )

const COMMAND_TIMEOUT = Duration.seconds(1)

/** Generous: a failing operation makes a handful of calls, each bounded by the command timeout. */
const FAILURE_BOUND_MILLIS = 3 * Duration.toMillis(COMMAND_TIMEOUT) + 1_000

/** How long the engine tries to prove the outcome of a lost commit before answering OutcomeUnknown. */
const SETTLE_TIMEOUT = Duration.millis(1_500)

/** A lost commit is answered after the settle window, plus the calls in flight when it closes. */
const UNKNOWN_BOUND_MILLIS = Duration.toMillis(SETTLE_TIMEOUT) + FAILURE_BOUND_MILLIS

const engineOptions = { settleTimeout: SETTLE_TIMEOUT }

const untilAnswering = Effect.retry({
  schedule: Schedule.spaced(Duration.millis(100)).pipe(Schedule.intersect(Schedule.recurs(150))),
})

describe("redis faults", () => {
  it.live(
    "SIGKILL under load (AOF, appendfsync always): operations fail in bounded time; after a restart every acknowledged modification is there",
    () =>
      Effect.gen(function* () {
        const redis = yield* server(["--appendonly", "yes", "--appendfsync", "always"])
        const storage = RedisStorage.layer({
          url: redis.url,
          commandTimeout: COMMAND_TIMEOUT,
          connectTimeout: COMMAND_TIMEOUT,
        })
        // A client that lives through the crash, to show that it reconnects by itself.
        const survivor = yield* Layer.build(engineWith(storage, engineOptions))
        const holders = sharedHolders()
        yield* Effect.provide(
          Effect.forEach(holders, (ref) => Effect.flatMap(CreditEngine, (e) => e.openHolder(ref))),
          survivor,
        )

        const logs = Array.from({ length: 6 }, emptyLog)
        const workers = yield* Effect.forEach(
          logs,
          (log, worker) =>
            Effect.fork(
              Effect.provide(
                runWorker({ worker, holders, cycles: 100_000, stopWhenUnavailable: true, log }),
                engineWith(storage, engineOptions),
              ),
            ),
          { concurrency: "unbounded" },
        )
        const acknowledgedSoFar = () => logs.reduce((n, l) => n + l.acknowledged.length, 0)
        while (acknowledgedSoFar() < 150) yield* Effect.sleep("10 millis")
        yield* promise(() => redis.crash())
        yield* Fiber.joinAll(workers)

        const acknowledged = logs.flatMap((l) => l.acknowledged)
        const unavailable = logs.flatMap((l) => l.unavailable)
        // Every worker was cut off mid-loop, and each failure came back in bounded time.
        for (const log of logs) expect(log.unavailable.length).toBeGreaterThan(0)
        for (const u of unavailable) {
          expect(u.millis).toBeLessThan(u.tag === "OutcomeUnknown" ? UNKNOWN_BOUND_MILLIS : FAILURE_BOUND_MILLIS)
        }

        // While the server is down, a call fails at once rather than waiting for it.
        const started = Date.now()
        const down = yield* Effect.flip(
          Effect.provide(
            Effect.flatMap(CreditEngine, (e) => e.getCredit(holders[0] as HolderRef)),
            survivor,
          ),
        )
        expect(down._tag).toBe("StorageUnavailable")
        expect(Date.now() - started).toBeLessThan(FAILURE_BOUND_MILLIS)

        yield* promise(() => redis.restart())
        yield* Effect.provide(untilAnswering(Effect.flatMap(Storage, (s) => s.ping)), survivor)
        yield* Effect.provide(
          Effect.forEach(holders, (ref) =>
            Effect.gen(function* () {
              const engine = yield* CreditEngine
              const mine = acknowledged.filter((a) => a.holder === holderKey(ref))
              const journaled = (yield* wholeJournal(ref)).filter((e) => e.kind === "modification")
              const ids = new Set(journaled.map((e) => e.id))
              for (const a of mine) expect(ids.has(a.entryId)).toBe(true)
              expect((yield* engine.verify(ref)).ok).toBe(true)
              // Beyond the acknowledged ones, only modifications whose caller saw a failure.
              const unknown = journaled.filter((e) => !mine.some((a) => a.entryId === e.id))
              expect(unknown.length).toBeLessThanOrEqual(unavailable.filter((u) => u.operation === "modify").length)
              const value = (yield* engine.getCredit(ref)).current.credit[0]?.amount.value ?? 0
              const sum = (entries: ReadonlyArray<{ readonly changes: ReadonlyArray<{ readonly delta: number }> }>) =>
                entries.reduce((s, e) => s + e.changes.reduce((t, c) => t + c.delta, 0), 0)
              expect(value).toBe(mine.reduce((s, a) => s + a.delta, 0) + sum(unknown))
            }),
          ),
          survivor,
        )
        expect(acknowledged.length).toBeGreaterThanOrEqual(150)
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live(
    "SCRIPT FLUSH again and again during a run: every operation still succeeds",
    () =>
      Effect.gen(function* () {
        const redis = yield* server()
        const raw = yield* rawClient(redis)
        let flushes = 0
        const flusher = yield* Effect.fork(
          Effect.forever(
            Effect.zipRight(
              promise(async () => {
                await raw.script("FLUSH")
                flushes++
              }),
              Effect.sleep("15 millis"),
            ),
          ),
        )
        yield* multiClientRun(RedisStorage.layer({ url: redis.url, keyPrefix: "flush:" }), 4, 40)
        yield* Fiber.interrupt(flusher)
        expect(flushes).toBeGreaterThan(5)
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live(
    "a server that stops answering (SIGSTOP): calls fail after the command timeout, then recover",
    () =>
      Effect.gen(function* () {
        const redis = yield* server()
        const context = yield* Layer.build(
          engineWith(RedisStorage.layer({ url: redis.url, commandTimeout: "500 millis" }), {
            settleTimeout: "1 second",
          }),
        )
        const ref = contract()
        const run = <A, E>(effect: Effect.Effect<A, E, CreditEngine>) => Effect.provide(effect, context)
        yield* run(Effect.flatMap(CreditEngine, (e) => e.openHolder(ref)))
        const { lock } = yield* run(Effect.flatMap(CreditEngine, (e) => e.lock(ref)))

        process.kill(redis.pid(), "SIGSTOP")
        const resume = Effect.sync(() => process.kill(redis.pid(), "SIGCONT"))
        const results = yield* Effect.ensuring(
          Effect.forEach(
            [
              run(Effect.flatMap(CreditEngine, (e) => e.getCredit(ref))),
              run(Effect.flatMap(CreditEngine, (e) => e.modify(ref, lock.key, change("GBP", 5)))),
            ],
            (effect) =>
              Effect.gen(function* () {
                const started = Date.now()
                const error = yield* Effect.flip(effect)
                return { tag: error._tag, millis: Date.now() - started }
              }),
            { concurrency: "unbounded" },
          ),
          resume,
        )
        // The read fails; the modification, planned on the engine's snapshot, sent its commit, whose
        // reply never came: it is unknown once the settle window (1 s) has passed without proof.
        const [read, write] = results
        expect(read?.tag).toBe("StorageUnavailable")
        expect(write?.tag).toBe("OutcomeUnknown")
        for (const r of results) {
          expect(r.millis).toBeGreaterThanOrEqual(450)
          expect(r.millis).toBeLessThan(FAILURE_BOUND_MILLIS + 1_000)
        }
        // The modification may or may not have been applied (its reply was never read); either
        // way the holder is consistent, and the same connection works again.
        yield* run(
          Effect.gen(function* () {
            const engine = yield* CreditEngine
            yield* engine.modify(ref, lock.key, change("GBP", 1))
            expect((yield* engine.verify(ref)).ok).toBe(true)
          }),
        )
      }).pipe(Effect.scoped),
    30_000,
  )

  it.live(
    "a Cluster with a master down (CLUSTERDOWN): every call fails with StorageUnavailable in bounded time",
    () =>
      Effect.gen(function* () {
        const cluster = yield* Effect.acquireRelease(
          promise(() => startCluster({ nodeTimeoutMillis: 500 })),
          (c) => promise(() => c.dispose()),
        )
        const context = yield* Layer.build(
          engineWith(RedisStorage.layer({ nodes: cluster.nodes, commandTimeout: COMMAND_TIMEOUT })),
        )
        const run = <A, E>(effect: Effect.Effect<A, E, CreditEngine>) => Effect.provide(effect, context)
        const refs = Array.from({ length: 12 }, () => contract())
        yield* run(Effect.forEach(refs, (ref) => Effect.flatMap(CreditEngine, (e) => e.openHolder(ref))))

        const inspector = yield* Effect.acquireRelease(
          Effect.sync(() => new Cluster([...cluster.nodes])),
          (c) => Effect.sync(() => c.disconnect()),
        )
        const [victim, ...survivors] = cluster.servers
        if (victim === undefined) throw new Error("no servers")
        const slotOwner = (ref: HolderRef) =>
          promise(async () => {
            const slot = Number(await inspector.cluster("KEYSLOT", `{${ref.customerId}}`))
            const shards = (await inspector.cluster("SLOTS")) as unknown as Array<[number, number, [string, number]]>
            return shards.find(([from, to]) => slot >= from && slot <= to)?.[2][1]
          })
        const owners = yield* Effect.forEach(refs, slotOwner)
        expect(owners).toContain(victim.port)
        expect(owners.some((p) => p !== victim.port)).toBe(true)

        yield* promise(() => victim.crash())
        yield* promise(() =>
          awaitClusterState(
            survivors.map((s) => s.port),
            "fail",
          ),
        )
        const outcomes = yield* Effect.forEach(
          refs,
          (ref) =>
            Effect.gen(function* () {
              const started = Date.now()
              const error = yield* Effect.flip(run(Effect.flatMap(CreditEngine, (e) => e.lock(ref))))
              return { error, millis: Date.now() - started }
            }),
          { concurrency: "unbounded" },
        )
        for (const { error, millis } of outcomes) {
          expect(error._tag).toBe("StorageUnavailable")
          expect(millis).toBeLessThan(FAILURE_BOUND_MILLIS)
        }
        // Holders on the surviving masters are refused by the cluster itself.
        // The surviving masters answer CLUSTERDOWN themselves; that reply becomes StorageUnavailable too.
        const direct = new Redis(survivors[0]?.port ?? 0, "127.0.0.1", RedisStorage.noResendOptions)
        yield* Effect.addFinalizer(() => Effect.sync(() => direct.disconnect()))
        const storage = yield* RedisStorage.fromClient(direct)
        const refused = yield* Effect.flip(storage.load(refs[0] as HolderRef))
        expect(refused._tag).toBe("StorageUnavailable")
        expect(refused.detail).toContain("CLUSTERDOWN")
      }).pipe(Effect.scoped),
    60_000,
  )
})
