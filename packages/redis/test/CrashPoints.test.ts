/**
 * The parts of a Redis commit and what is left when it is interrupted between them,
 * and the cross-slot pointers conflicting attempts leave. A commit writes, in this
 * order: its balance-group claims (SET NX), on a Cluster its pointers in other slots (SADD), then
 * the script (document, journal, entry maps, the index keys it reaches — every one on a standalone
 * server, the same-slot ones on a Cluster — and claim confirmations). Whatever stops it, the store
 * may hold a claim or a pointer naming a holder that does not match it, but never a document or
 * journal entry whose pointers or claim are missing.
 *
 * The Cluster runs are on a one-master Cluster behind the cutting proxy (ioredis's `natMap` sends
 * the client through it), so the Cluster's order of writes is what is cut.
 */
import { randomUUID } from "node:crypto"
import { CreditEngine } from "@creditlock/core"
import {
  type CommitRequest,
  type HolderDocument,
  type HolderRef,
  holderKey,
  type IndexKey,
  type JournalEntry,
  Storage,
} from "@creditlock/core/storage"
import { change, contract, engineWith, wrapStorage } from "@creditlock/test-suite"
import {
  awaitClusterState,
  freePort,
  type RedisServer,
  rawCommand,
  startServer,
} from "@creditlock/test-suite/redis-server"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import { Cluster, Redis } from "ioredis"
import { RedisStorage } from "../src/index.js"
import { keyLayout } from "../src/internal/keys.js"
import { type Proxy as CuttingProxy, eventually, proxy, serverPerFile } from "./Tools.js"

const { port, raw } = serverPerFile()

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

/** The commit that opens `ref` claiming `alias`: an `opened` entry, its customer, subscription and order keys. */
const opening = (ref: HolderRef, alias: string): CommitRequest => {
  const entry: JournalEntry = { id: randomUUID(), seq: 1, at: 1, holder: ref, kind: "opened", changes: [] }
  const document: HolderDocument = { ref, balanceGroupId: alias, openedAt: 1, balances: [], lock: null, journalSeq: 1 }
  const index: ReadonlyArray<IndexKey> = [
    { kind: "customer", value: ref.customerId },
    { kind: "subscription", value: ref.holderId },
    { kind: "order", value: entry.id },
  ]
  return { ref, expected: "absent", document, entries: [entry], index, claims: [alias] }
}

/** What Redis holds of a commit request: its holder's keys, its claim and its pointers. */
const inspect = (raw: Redis, prefix: string, request: CommitRequest) =>
  Effect.gen(function* () {
    const layout = keyLayout(prefix)
    const keys = layout.holder(request.ref)
    const member = holderKey(request.ref)
    const claims = yield* Effect.forEach(request.claims, (alias) => promise(() => raw.get(layout.claim(alias))))
    const pointers = yield* Effect.forEach(request.index, (key) =>
      // A key of the wrong type (injected by a test) holds no member.
      promise(() => raw.sismember(layout.index(key), member).catch(() => 0)),
    )
    const crossSlot = pointers.filter((_, i) => !layout.sameSlot(request.ref, request.index[i] as IndexKey))
    return {
      document: (yield* promise(() => raw.exists(keys.holder))) === 1,
      journal: yield* promise(() => raw.llen(keys.journal)),
      confirmed: yield* promise(() => raw.smembers(keys.claims)),
      claimed: claims.every((c) => c === member),
      /** Every pointer in another slot (written before the script). */
      crossSlot: crossSlot.every((p) => p === 1),
      /** Every index key, the same-slot ones (written by the script) too. */
      pointed: pointers.every((p) => p === 1),
    }
  })

/**
 * The crash-point invariant: a stored document comes with its journal, every pointer of its
 * index keys and its claims, confirmed. (Pointers and claims without a document are allowed.)
 */
const expectNoDocumentWithoutPointers = (state: Effect.Effect.Success<ReturnType<typeof inspect>>) => {
  if (state.document || state.journal > 0 || state.confirmed.length > 0) {
    expect(state).toMatchObject({ document: true, journal: 1, claimed: true, crossSlot: true, pointed: true })
  }
}

/** A Cluster of one master holding every slot, on a free port; stopped by pid after the file's tests. */
const oneMasterCluster = () => {
  let server: RedisServer | undefined
  beforeAll(async () => {
    const busPort = await freePort()
    server = await startServer({
      args: [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-port",
        String(busPort),
        "--cluster-announce-ip",
        "127.0.0.1",
      ],
    })
    await rawCommand(server.port, "CLUSTER ADDSLOTSRANGE 0 16383")
    await awaitClusterState([server.port], "ok")
  })
  afterAll(async () => {
    await server?.dispose()
  })
  return () => {
    if (server === undefined) throw new Error("the Redis Cluster did not start")
    return server
  }
}

const cluster = oneMasterCluster()

/** A Cluster client of the one-master Cluster that reaches it through `cutter` only. */
const clusterThrough = (cutter: CuttingProxy) =>
  Effect.acquireRelease(
    Effect.sync(
      () =>
        new Cluster([{ host: "127.0.0.1", port: cutter.port }], {
          ...RedisStorage.noResendClusterOptions,
          natMap: { [`127.0.0.1:${cluster().port}`]: { host: "127.0.0.1", port: cutter.port } },
          redisOptions: { ...RedisStorage.noResendOptions, commandTimeout: 1_000 },
        }),
    ),
    (client) => Effect.promise(() => client.quit().catch(() => client.disconnect())),
  )

const topologies = [
  {
    name: "a standalone server",
    // Every index key is written by the script: only the claims come before it.
    cuts: [{ cut: "evalsha", after: "its claims", pointers: false }],
    raw: () => raw(),
    storage: (cutter: CuttingProxy, prefix: string) =>
      RedisStorage.make({ port: cutter.port, keyPrefix: prefix, commandTimeout: "1 second" }),
    target: () => port(),
  },
  {
    name: "a Cluster",
    cuts: [
      { cut: "sadd", after: "its claims", pointers: false },
      { cut: "evalsha", after: "its claims and pointers", pointers: true },
    ],
    raw: () => clusterRaw(),
    storage: (cutter: CuttingProxy, prefix: string) =>
      Effect.flatMap(clusterThrough(cutter), (client) =>
        RedisStorage.fromClient(client, { keyPrefix: prefix, commandTimeout: "1 second" }),
      ),
    target: () => cluster().port,
  },
] as const

let clusterInspector: Redis | undefined
afterAll(async () => {
  await clusterInspector?.quit()
})
/** A plain client of the one-master Cluster's node (it holds every key). */
const clusterRaw = (): Redis => {
  clusterInspector ??= new Redis(cluster().port, "127.0.0.1")
  return clusterInspector
}

for (const topology of topologies)
  describe(`redis on ${topology.name}: a commit interrupted between its parts`, () => {
    for (const { cut, after, pointers } of topology.cuts) {
      it.live(`the connection dies after ${after}: what was written names a holder that does not exist`, () =>
        Effect.gen(function* () {
          // (The prefix must not contain the pattern the proxy cuts at.)
          const prefix = `crash-${randomUUID()}:`
          const cutter = yield* proxy(topology.target())
          const storage = yield* topology.storage(cutter, prefix)
          const ref = contract()
          const alias = `bg-${randomUUID()}`
          const request = opening(ref, alias)

          cutter.cutAt(cut)
          const answer = yield* Effect.either(storage.commit(request))
          expect(cutter.cuts()).toBe(1)
          // The script was not sent, or sent into a dying connection: never "Committed".
          expect(Either.isLeft(answer) && answer.left._tag).toBe(
            cut === "sadd" ? "StorageUnavailable" : "OutcomeUnknown",
          )
          const state = yield* inspect(topology.raw(), prefix, request)
          expect(state).toEqual({
            document: false,
            journal: 0,
            confirmed: [],
            claimed: true,
            crossSlot: pointers,
            pointed: false,
          })
          expectNoDocumentWithoutPointers(state)

          yield* eventually("the client reconnected", Effect.map(Effect.either(storage.ping), Either.isRight))
          // The leftovers change no answer: the alias is nobody's yet, the holder does not exist.
          expect(yield* storage.lookup({ kind: "balanceGroup", value: alias })).toEqual([])
          expect(yield* storage.load(ref)).toEqual(Option.none())
          // The claim stays with the holder whose commit wrote it: another holder is refused it…
          const other = opening(contract(), alias)
          expect(yield* storage.commit(other)).toEqual({ _tag: "Claimed", alias, holder: ref })
          // …and the same commit, sent again by the engine's next attempt, completes it.
          expect(yield* storage.commit(request)).toEqual({ _tag: "Committed", revision: 1 })
          expect(yield* storage.lookup({ kind: "balanceGroup", value: alias })).toEqual([ref])
          expect(yield* storage.lookup({ kind: "subscription", value: ref.holderId })).toEqual([ref])
          const done = yield* inspect(topology.raw(), prefix, request)
          expect(done).toEqual({
            document: true,
            journal: 1,
            confirmed: [alias],
            claimed: true,
            crossSlot: true,
            pointed: true,
          })
          expectNoDocumentWithoutPointers(done)
        }).pipe(Effect.scoped),
      )
    }
  })

describe("redis: a commit interrupted between its parts", () => {
  it.live(
    "an index key that cannot be written (a key of the wrong type) stops the commit before it writes the holder",
    () =>
      Effect.gen(function* () {
        const prefix = `crash-type-${randomUUID()}:`
        const layout = keyLayout(prefix)
        const storage = yield* RedisStorage.make({ port: port(), keyPrefix: prefix })
        const ref = contract()
        const alias = `bg-${randomUUID()}`
        const request = opening(ref, alias)
        const pointer = layout.index({ kind: "subscription", value: ref.holderId })
        yield* promise(() => raw().set(pointer, "not a set"))

        const answer = yield* Effect.either(storage.commit(request))
        expect(Either.isLeft(answer) && answer.left._tag).toBe("StorageUnavailable")
        expect(Either.isLeft(answer) && answer.left.detail).toContain("WRONGTYPE")
        const state = yield* inspect(raw(), prefix, request)
        // The claim was written first; the document and journal were not written at all.
        expect(state).toMatchObject({ document: false, journal: 0, confirmed: [], claimed: true, crossSlot: false })
        expectNoDocumentWithoutPointers(state)

        yield* promise(() => raw().del(pointer))
        expect(yield* storage.commit(request)).toEqual({ _tag: "Committed", revision: 1 })
        expectNoDocumentWithoutPointers(yield* inspect(raw(), prefix, request))
      }).pipe(Effect.scoped),
  )
})

describe("redis: conflicting attempts leak no cross-slot pointer", () => {
  it.live("32 concurrent modifies of one hot holder: one order pointer per journal entry id and reference", () =>
    Effect.gen(function* () {
      const prefix = `hot-${randomUUID()}:`
      const counts = { Conflict: 0 }
      const base = RedisStorage.layer({ port: port(), keyPrefix: prefix })
      const counting = wrapStorage(base, (s) => ({
        commit: (request) =>
          s.commit(request).pipe(
            Effect.tap((r) =>
              Effect.sync(() => {
                if (r._tag === "Conflict") counts.Conflict += 1
              }),
            ),
          ),
      }))
      const ref = contract()
      yield* Effect.provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          yield* engine.openHolder(ref)
          const { lock } = yield* engine.lock(ref)
          yield* Effect.forEach(
            Array.from({ length: 32 }, (_, i) => i),
            (i) => engine.modify(ref, lock.key, change("GBP", 1 + i, "hot", `hot-${i}-${randomUUID()}`)),
            { concurrency: "unbounded", discard: true },
          )
        }),
        // Without the cache, one engine's operations on a holder race each other on the revision.
        engineWith(counting, { maxAttempts: 1000, snapshotCache: false }),
      )
      // Many attempts lost the race and were planned again with the same ids.
      expect(counts.Conflict).toBeGreaterThan(10)

      const journal = yield* Effect.flatMap(Storage, (s) => s.journal(ref, { afterSeq: 0, limit: 1000 })).pipe(
        Effect.provide(base),
      )
      expect(journal).toHaveLength(33)
      const values = journal.flatMap((e) => [e.id, ...(e.reference === undefined ? [] : [e.reference])])
      const member = holderKey(ref)
      const orderKeys: Array<string> = []
      let cursor = "0"
      do {
        const [next, keys] = yield* promise(() => raw().scan(cursor, "MATCH", `${prefix}cl:*:ix:order`, "COUNT", 1000))
        cursor = next
        orderKeys.push(...keys)
      } while (cursor !== "0")
      const naming = yield* Effect.filter(orderKeys, (key) =>
        Effect.map(
          promise(() => raw().sismember(key, member)),
          (n) => n === 1,
        ),
      )
      const layout = keyLayout(prefix)
      expect([...naming].sort()).toEqual(values.map((value) => layout.index({ kind: "order", value })).sort())
    }).pipe(Effect.scoped),
  )
})
