/**
 * No driver resends on a Redis Cluster. Each test makes a slot answer
 * what used to make ioredis queue a command and send it later — TRYAGAIN (a slot being migrated),
 * CLUSTERDOWN (a master stopped until the cluster marks it failed), a node connection that is
 * still connecting — then checks the answer, heals the cluster, waits longer than any driver retry
 * would, and inspects the keys and the servers' MONITOR output: no write lands after its answer,
 * and no commit is sent twice.
 */
import { randomUUID } from "node:crypto"
import { CreditEngine } from "@creditlock/core"
import { type HolderRef, Storage, type StoredHolder } from "@creditlock/core/storage"
import { change, contract, engineWith } from "@creditlock/test-suite"
import { awaitClusterState, type RedisCluster, requireRedis, startCluster } from "@creditlock/test-suite/redis-server"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Option } from "effect"
import { Cluster } from "ioredis"
import { afterAll, beforeAll } from "vitest"
import { RedisStorage } from "../src/index.js"
import { keyLayout } from "../src/internal/keys.js"
import { creditRequest, eventually, type Monitor, monitor, nodeClient, sleep } from "./Tools.js"

// Fails the whole file, before any test is collected, when redis-server or redis-cli is missing.
requireRedis()

let cluster: RedisCluster | undefined

beforeAll(async () => {
  cluster = await startCluster({ nodeTimeoutMillis: 1_000 })
})

afterAll(async () => {
  await cluster?.dispose()
})

const servers = () => {
  if (cluster === undefined) throw new Error("the Redis Cluster did not start")
  return cluster.servers
}

const nodes = () => servers().map((s) => ({ host: "127.0.0.1", port: s.port }))

/** Longer than any retry ioredis would make by default: 16 redirections × 100 ms, and then some. */
const QUIET_MILLIS = 2_500

const COMMAND_TIMEOUT = "1 second"

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

/** The port of the master serving `ref`'s slot, and the slot. */
const ownerOf = (ref: HolderRef, prefix: string) =>
  Effect.gen(function* () {
    const any = yield* nodeClient(servers()[0]?.port ?? 0)
    const slot = Number(yield* promise(() => any.cluster("KEYSLOT", keyLayout(prefix).holder(ref).holder)))
    const shards = (yield* promise(() => any.cluster("SLOTS"))) as unknown as Array<[number, number, [string, number]]>
    const port = shards.find(([from, to]) => slot >= from && slot <= to)?.[2][1]
    if (port === undefined) return yield* Effect.dieMessage(`no master serves slot ${slot}`)
    return { slot, port }
  })

/** Holders of fresh customers until one lives on a master other than `avoid` (and on `want`, if given). */
const holderOn = (prefix: string, choose: (port: number) => boolean) =>
  Effect.gen(function* () {
    for (;;) {
      const ref = contract()
      const owner = yield* ownerOf(ref, prefix)
      if (choose(owner.port)) return { ref, ...owner }
    }
  })

/** The commit commands (EVALSHA or EVAL) that ran for the holder key `key`, over every master. */
const commitsRun = (monitors: ReadonlyArray<Monitor>, key: string) =>
  monitors.flatMap((m) => [...m.commands("evalsha", key), ...m.commands("eval", key)])

/**
 * How many EVALSHA and EVAL commands the masters received since {@link resetStats}: run or
 * rejected before running (MONITOR does not show a command refused with TRYAGAIN or CLUSTERDOWN,
 * but INFO commandstats counts it as a rejected call).
 */
const scriptCalls = Effect.gen(function* () {
  let total = 0
  for (const s of servers()) {
    const client = yield* nodeClient(s.port)
    const stats = yield* promise(() => client.info("commandstats"))
    for (const name of ["evalsha", "eval"]) {
      const line = stats.split("\r\n").find((l) => l.startsWith(`cmdstat_${name}:`)) ?? ""
      const field = (f: string) => Number(line.match(new RegExp(`[:,]${f}=([0-9]+)`))?.[1] ?? 0)
      total += field("calls") + field("rejected_calls")
    }
  }
  return total
})

/** Resets every master's command statistics. */
const resetStats = Effect.suspend(() =>
  Effect.forEach(servers(), (s) =>
    Effect.flatMap(nodeClient(s.port), (client) => promise(() => client.config("RESETSTAT"))),
  ),
)

/** Opens `ref` and credits it once through an engine over `storage`, so it has a journal. */
const seed = (ref: HolderRef) =>
  Effect.gen(function* () {
    const engine = yield* CreditEngine
    yield* engine.openHolder(ref)
    const { lock } = yield* engine.lock(ref)
    yield* engine.modify(ref, lock.key, change("GBP", 10, "seed", `seed-${randomUUID()}`))
    yield* engine.unlock(ref, lock.key)
  })

const loaded = (ref: HolderRef) =>
  Effect.flatMap(Storage, (s) => s.load(ref)).pipe(Effect.map((o) => Option.getOrThrow(o)))

const journalLength = (ref: HolderRef) =>
  Effect.flatMap(Storage, (s) => s.journal(ref, { afterSeq: 0, limit: 10_000 })).pipe(Effect.map((j) => j.length))

describe("redis (cluster): no driver resends", () => {
  it.live(
    "a slot being migrated (TRYAGAIN): the commit answers StorageUnavailable at once, is sent once, and never lands",
    () =>
      Effect.gen(function* () {
        const prefix = `tryagain-${randomUUID()}:`
        const layout = keyLayout(prefix)
        const context = yield* Layer.build(
          engineWith(RedisStorage.layer({ nodes: nodes(), keyPrefix: prefix, commandTimeout: COMMAND_TIMEOUT })),
        )
        const run = <A, E>(effect: Effect.Effect<A, E, CreditEngine | Storage>) => Effect.provide(effect, context)
        const { ref, slot, port: source } = yield* holderOn(prefix, () => true)
        const target = servers().find((s) => s.port !== source)?.port ?? 0
        yield* run(seed(ref))
        const before: StoredHolder = yield* run(loaded(ref))
        const entries = yield* run(journalLength(ref))

        const from = yield* nodeClient(source)
        const to = yield* nodeClient(target)
        const sourceId = String(yield* promise(() => from.cluster("MYID")))
        const targetId = String(yield* promise(() => to.cluster("MYID")))
        const monitors = yield* Effect.forEach(servers(), (s) => monitor(s.port))
        yield* resetStats
        // Start migrating the holder's slot, and move one of its keys: the commit script's keys
        // are now partly on the source, partly on the target, and the source answers TRYAGAIN.
        yield* promise(() => to.cluster("SETSLOT", slot, "IMPORTING", sourceId))
        yield* promise(() => from.cluster("SETSLOT", slot, "MIGRATING", targetId))
        const keys = layout.holder(ref)
        yield* promise(() => from.migrate("127.0.0.1", target, "", 0, 5_000, "KEYS", keys.ids))

        const request = creditRequest(before, 7, `tryagain-${randomUUID()}`)
        const started = Date.now()
        const answer = yield* run(Effect.either(Effect.flatMap(Storage, (s) => s.commit(request))))
        const millis = Date.now() - started
        expect(Either.isLeft(answer) && answer.left._tag).toBe("StorageUnavailable")
        expect(Either.isLeft(answer) && answer.left.detail).toContain("TRYAGAIN")
        // Answered on the first reply, not after ioredis's retries (16 × 100 ms by default).
        expect(millis).toBeLessThan(500)
        // The engine answers the same: not applied.
        const modified = yield* run(
          Effect.either(
            Effect.gen(function* () {
              const engine = yield* CreditEngine
              const { lock } = yield* engine.lock(ref)
              return yield* engine.modify(ref, lock.key, change("GBP", 5, "during migration"))
            }),
          ),
        )
        expect(Either.isLeft(modified) && modified.left._tag).toBe("StorageUnavailable")

        // Heal: finish the migration, so the slot is served again (by the target).
        for (;;) {
          const rest = (yield* promise(() => from.cluster("GETKEYSINSLOT", slot, 1_000))) as unknown as Array<string>
          if (rest.length === 0) break
          yield* promise(() => from.migrate("127.0.0.1", target, "", 0, 5_000, "KEYS", ...rest))
        }
        // The target first, then the source, then the others (as `redis-cli --cluster reshard` does).
        const order = [
          target,
          source,
          ...servers()
            .map((s) => s.port)
            .filter((p) => p !== target && p !== source),
        ]
        for (const p of order) {
          const client = yield* nodeClient(p)
          yield* promise(() => client.cluster("SETSLOT", slot, "NODE", targetId))
        }
        yield* sleep(QUIET_MILLIS)

        // The commit and the engine's lock attempt were each sent once, refused, and never run.
        // (Counted before reading: findEntry is a script too.)
        expect(yield* scriptCalls).toBe(2)
        expect(commitsRun(monitors, keys.holder)).toEqual([])
        // Nothing landed: the document, its revision and the journal are as before the commit.
        // (The client meets MOVED on its first call and follows the new slot map.)
        yield* eventually("the holder is readable again", Effect.map(Effect.either(run(loaded(ref))), Either.isRight))
        expect(yield* run(loaded(ref))).toEqual(before)
        expect(yield* run(journalLength(ref))).toBe(entries)
        expect(
          yield* run(Effect.flatMap(Storage, (s) => s.findEntry(ref, { id: request.entries[0]?.id ?? "" }))),
        ).toEqual(Option.none())

        // The storage works again on the new owner.
        yield* run(
          Effect.gen(function* () {
            const engine = yield* CreditEngine
            const held = yield* Effect.either(engine.lock(ref))
            // The lock attempt during the migration was refused before committing, so none is held.
            expect(Either.isRight(held)).toBe(true)
            if (Either.isRight(held)) yield* engine.modify(ref, held.right.lock.key, change("GBP", 1, "after"))
            expect((yield* engine.verify(ref)).ok).toBe(true)
          }),
        )
      }).pipe(Effect.scoped),
    30_000,
  )

  it.live(
    "a node connection still connecting when the call times out: the commit answers StorageUnavailable and its queued write never leaves",
    () =>
      Effect.gen(function* () {
        const prefix = `queued-${randomUUID()}:`
        const layout = keyLayout(prefix)
        const client = yield* Effect.acquireRelease(
          Effect.sync(() => new Cluster(nodes(), { ...RedisStorage.noResendClusterOptions })),
          (c) => Effect.sync(() => c.disconnect()),
        )
        client.on("error", () => undefined)
        const storage = yield* RedisStorage.fromClient(client, { keyPrefix: prefix, commandTimeout: "500 millis" })
        const context = yield* Layer.build(engineWith(Layer.succeed(Storage, storage)))
        const run = <A, E>(effect: Effect.Effect<A, E, CreditEngine | Storage>) => Effect.provide(effect, context)
        const { ref, port } = yield* holderOn(prefix, () => true)
        const victim = servers().find((s) => s.port === port)
        if (victim === undefined) return yield* Effect.dieMessage("no victim")
        yield* run(seed(ref))
        const before = yield* run(loaded(ref))

        // Cut the client's connection to the holder's master. ioredis does not reconnect a
        // Cluster node; a slot refresh creates a new, lazy connection ("wait"), which queues the
        // first command sent to it until it is ready.
        const admin = yield* nodeClient(port)
        yield* promise(() => admin.client("KILL", "TYPE", "normal", "SKIPME", "yes"))
        const lazyNode = () => client.nodes("master").find((n) => n.options.port === port && n.status === "wait")
        yield* eventually(
          "a new lazy connection to the master",
          Effect.sync(() => {
            if (lazyNode() !== undefined) return true
            client.refreshSlotsCache()
            return false
          }),
        )
        const watch = yield* monitor(port)

        // The master stops answering: the kernel still accepts the connection, but ioredis's
        // ready check (INFO) gets no reply, so the commit waits in the node's offline queue.
        process.kill(victim.pid(), "SIGSTOP")
        const resume = Effect.sync(() => process.kill(victim.pid(), "SIGCONT"))
        // No cross-slot pointers, so that the script itself is what waits in the queue.
        const request = { ...creditRequest(before, 3), index: [] }
        const answer = yield* Effect.either(storage.commit(request)).pipe(Effect.ensuring(resume))
        expect(Either.isLeft(answer) && answer.left._tag).toBe("StorageUnavailable")
        expect(Either.isLeft(answer) && answer.left.detail).toContain("was not applied")

        // The master answers again; the connection becomes ready and flushes its queue.
        yield* eventually(
          "the connection is ready",
          Effect.sync(() => client.nodes("master").some((n) => n.options.port === port && n.status === "ready")),
        )
        yield* sleep(500)
        expect(watch.commands("evalsha", layout.holder(ref).holder)).toEqual([])
        expect(yield* run(loaded(ref))).toEqual(before)
        expect(yield* storage.findEntry(ref, { id: request.entries[0]?.id ?? "" })).toEqual(Option.none())
        // What the queue held was written as a PING instead.
        expect(watch.lines().some((l) => l.includes('"PING"') || l.includes('"ping"'))).toBe(true)
      }).pipe(Effect.scoped),
    30_000,
  )

  it.live(
    "a master stopped until the cluster fails (CLUSTERDOWN): commits answer at once or as unknown, and none is re-sent when it heals",
    () =>
      Effect.gen(function* () {
        const prefix = `clusterdown-${randomUUID()}:`
        const layout = keyLayout(prefix)
        const context = yield* Layer.build(
          engineWith(RedisStorage.layer({ nodes: nodes(), keyPrefix: prefix, commandTimeout: COMMAND_TIMEOUT })),
        )
        const run = <A, E>(effect: Effect.Effect<A, E, CreditEngine | Storage>) => Effect.provide(effect, context)
        const [victim] = servers()
        if (victim === undefined) return yield* Effect.dieMessage("no servers")
        const survivor = yield* holderOn(prefix, (p) => p !== victim.port)
        const stopped = yield* holderOn(prefix, (p) => p === victim.port)
        yield* run(Effect.all([seed(survivor.ref), seed(stopped.ref)]))
        const onSurvivor = yield* run(loaded(survivor.ref))
        const onStopped = yield* run(loaded(stopped.ref))
        const monitors = yield* Effect.forEach(servers(), (s) => monitor(s.port))
        yield* resetStats

        process.kill(victim.pid(), "SIGSTOP")
        const resume = Effect.sync(() => process.kill(victim.pid(), "SIGCONT"))
        const outcomes = yield* Effect.gen(function* () {
          yield* promise(() =>
            awaitClusterState(
              servers()
                .filter((s) => s !== victim)
                .map((s) => s.port),
              "fail",
            ),
          )
          const storage = yield* run(Storage)
          // No cross-slot pointers, so that the script itself meets the outage.
          // A surviving master refuses with CLUSTERDOWN: certainly not applied, answered at once.
          const started = Date.now()
          const down = yield* Effect.either(storage.commit({ ...creditRequest(onSurvivor, 5), index: [] }))
          const downMillis = Date.now() - started
          // The stopped master got the commit and cannot answer: it may be applied later.
          const lost = yield* Effect.either(storage.commit({ ...creditRequest(onStopped, 5), index: [] }))
          return { down, downMillis, lost }
        }).pipe(Effect.ensuring(resume))
        expect(Either.isLeft(outcomes.down) && outcomes.down.left._tag).toBe("StorageUnavailable")
        expect(Either.isLeft(outcomes.down) && outcomes.down.left.detail).toContain("CLUSTERDOWN")
        expect(outcomes.downMillis).toBeLessThan(500)
        expect(Either.isLeft(outcomes.lost) && outcomes.lost.left._tag).toBe("OutcomeUnknown")

        yield* promise(() =>
          awaitClusterState(
            servers().map((s) => s.port),
            "ok",
          ),
        )
        yield* sleep(QUIET_MILLIS)
        // Two commits, each sent once and never again: the refused one never ran, nothing of it
        // landed; the lost one ran when the master resumed, or not at all.
        expect(yield* scriptCalls).toBe(2)
        expect(commitsRun(monitors, layout.holder(survivor.ref).holder)).toEqual([])
        expect(yield* run(loaded(survivor.ref))).toEqual(onSurvivor)
        const ran = commitsRun(monitors, layout.holder(stopped.ref).holder).length
        expect(ran).toBeLessThanOrEqual(1)
        expect((yield* run(loaded(stopped.ref))).revision).toBe(onStopped.revision + ran)
        yield* run(
          Effect.forEach([survivor.ref, stopped.ref], (ref) =>
            Effect.flatMap(CreditEngine, (engine) => Effect.map(engine.verify(ref), (r) => expect(r.ok).toBe(true))),
          ),
        )
      }).pipe(Effect.scoped),
    40_000,
  )
})
