import { randomUUID } from "node:crypto"
import { CreditEngine } from "@creditlock/core"
import {
  type CommitRequest,
  encodeDocument,
  type HolderRef,
  holderKey,
  type JournalEntry,
  Storage,
} from "@creditlock/core/storage"
import { change, contract, customerHolder, engineWith, freshCustomer, type StorageLayer } from "@creditlock/test-suite"
import { freePort, requireBinary, startServer } from "@creditlock/test-suite/redis-server"
import { describe, expect, it } from "@effect/vitest"
import {
  Config,
  ConfigError,
  ConfigProvider,
  type Duration,
  Effect,
  Either,
  Exit,
  Layer,
  Option,
  Redacted,
  Scope,
} from "effect"
import { Redis, type RedisOptions } from "ioredis"
import { RedisStorage } from "../src/index.js"
import { escapeId, keyLayout } from "../src/internal/keys.js"
import * as Scripts from "../src/internal/scripts.js"
import { creditRequest, proxy, serverPerFile, sleep, eventually as until } from "./Tools.js"

const { url, raw } = serverPerFile()

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

const storageLayer = (prefix: string): StorageLayer =>
  Layer.suspend(() => RedisStorage.layer({ url: url(), keyPrefix: prefix }))

const withEngine = <A, E>(prefix: string, effect: Effect.Effect<A, E, CreditEngine | Storage>) =>
  Effect.provide(effect, engineWith(storageLayer(prefix)))

const uniquePrefix = (name: string) => `${name}-${randomUUID()}:`

const keysUnder = (prefix: string) => promise(() => raw().keys(`${prefix}*`))

/** The commit that creates `ref`, with its `opened` entry and its customer index key. */
const opening = (ref: HolderRef): CommitRequest => {
  const entry: JournalEntry = { id: randomUUID(), seq: 1, at: 1, holder: ref, kind: "opened", changes: [] }
  return {
    ref,
    expected: "absent",
    document: { ref, balanceGroupId: null, openedAt: 1, balances: [], lock: null, journalSeq: 1 },
    entries: [entry],
    index: [{ kind: "customer", value: ref.customerId }],
    claims: [],
  }
}

describe("RedisStorage (standalone server)", () => {
  describe("key layout", () => {
    it.live("a holder, its journal, its entry maps and its customer index are tagged with the customer id", () => {
      const prefix = uniquePrefix("layout")
      return withEngine(
        prefix,
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          // Braces, colons and percent signs are valid in ids and must not break the hash tag.
          const ref: HolderRef = {
            customerId: `c}{:%-${randomUUID()}`,
            holderType: "contracts",
            holderId: `s:{1}-${randomUUID()}`,
          }
          const balanceGroupId = `bg-${randomUUID()}`
          yield* engine.openHolder(ref, { balanceGroupId })
          const { lock } = yield* engine.lock(ref)
          const modified = yield* engine.modify(ref, lock.key, change("GBP", 5, "layout", "ref-1"))
          const journal = yield* engine.journal(ref)
          const [opened, modification] = journal.entries
          if (opened === undefined || modification === undefined) throw new Error("expected two entries")
          expect(modification.id).toBe(modified.entryId)

          const tag = `{${escapeId(ref.customerId)}}`
          const part = `contracts:${escapeId(ref.holderId)}`
          const base = `${prefix}cl:`
          const expected = [
            `${base}${tag}:h:${part}`,
            `${base}${tag}:j:${part}`,
            `${base}${tag}:ji:${part}`,
            `${base}${tag}:jr:${part}`,
            `${base}${tag}:bg:${part}`,
            `${base}${tag}:ix:customer`,
            `${base}{${escapeId(ref.holderId)}}:ix:subscription`,
            `${base}{${balanceGroupId}}:bg`,
            `${base}{${opened.id}}:ix:order`,
            `${base}{${modification.id}}:ix:order`,
            `${base}{ref-1}:ix:order`,
          ]
          expect([...(yield* keysUnder(prefix))].sort()).toEqual([...expected].sort())
          // The hash tag of every key of the customer is exactly the escaped customer id.
          for (const key of expected.slice(0, 6)) {
            const open = key.indexOf("{")
            expect(key.slice(open, key.indexOf("}", open) + 1)).toBe(tag)
          }

          const holder = yield* promise(() => raw().hgetall(`${base}${tag}:h:${part}`))
          expect(holder.rev).toBe("3")
          const stored = yield* Effect.flatMap(Storage, (s) => s.load(ref))
          expect(Option.map(stored, (s) => encodeDocument(s.document))).toEqual(Option.some(holder.doc))
          expect(yield* promise(() => raw().llen(`${base}${tag}:j:${part}`))).toBe(2)
          expect(yield* promise(() => raw().hgetall(`${base}${tag}:ji:${part}`))).toEqual({
            [opened.id]: "1",
            [modification.id]: "2",
          })
          expect(yield* promise(() => raw().hgetall(`${base}${tag}:jr:${part}`))).toEqual({ "ref-1": "2" })
          expect(yield* promise(() => raw().smembers(`${base}${tag}:ix:customer`))).toEqual([holderKey(ref)])
          // The alias's claim names the holder, and the holder's claims set confirms it.
          expect(yield* promise(() => raw().get(`${base}{${balanceGroupId}}:bg`))).toBe(holderKey(ref))
          expect(yield* promise(() => raw().smembers(`${base}${tag}:bg:${part}`))).toEqual([balanceGroupId])
        }),
      )
    })

    it.live("key prefixes keep deployments apart on one server", () => {
      const a = uniquePrefix("tenant-a")
      const b = uniquePrefix("tenant-b")
      const ref = contract()
      return Effect.gen(function* () {
        yield* withEngine(
          a,
          Effect.gen(function* () {
            const engine = yield* CreditEngine
            yield* engine.openHolder(ref)
            const { lock } = yield* engine.lock(ref)
            yield* engine.modify(ref, lock.key, change("GBP", 10))
          }),
        )
        yield* withEngine(
          b,
          Effect.gen(function* () {
            const engine = yield* CreditEngine
            expect((yield* Effect.flip(engine.getCredit(ref)))._tag).toBe("HolderNotFound")
            expect((yield* engine.openHolder(ref)).created).toBe(true)
            expect((yield* engine.getCredit(ref)).current.credit).toEqual([])
          }),
        )
        const keysA = yield* keysUnder(a)
        const keysB = yield* keysUnder(b)
        expect(keysA.length).toBeGreaterThan(0)
        expect(keysB.length).toBeGreaterThan(0)
        expect(keysA.some((k) => keysB.includes(k))).toBe(false)
      })
    })

    it.live("a key prefix with a brace, or a timeout that is not a duration, is refused", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(Effect.scoped(RedisStorage.make({ url: url(), keyPrefix: "bad{prefix}:" })))
        expect(error._tag).toBe("StorageUnavailable")
        expect(error.detail).toContain("keyPrefix")
        const timeout = yield* Effect.flip(
          Effect.scoped(RedisStorage.make({ url: url(), commandTimeout: "soon" as unknown as Duration.DurationInput })),
        )
        expect(timeout.detail).toContain("commandTimeout")
      }),
    )
  })

  describe("clients", () => {
    const connectedClients = () =>
      promise(async () => Number(/connected_clients:(\d+)/.exec(await raw().info("clients"))?.[1]))

    const eventually = (check: Effect.Effect<boolean>) =>
      Effect.gen(function* () {
        for (let i = 0; i < 100; i++) {
          if (yield* check) return
          yield* Effect.sleep("20 millis")
        }
        expect(yield* check).toBe(true)
      })

    it.live("a client the library opened is closed with the scope", () =>
      Effect.gen(function* () {
        const before = yield* connectedClients()
        const scope = yield* Scope.make()
        const storage = yield* Scope.extend(RedisStorage.make({ url: url() }), scope)
        yield* storage.ping
        expect(yield* connectedClients()).toBe(before + 1)
        yield* Scope.close(scope, Exit.void)
        yield* eventually(Effect.map(connectedClients(), (n) => n === before))
      }),
    )

    it.live("the caller's client is used as it is and left open", () =>
      Effect.gen(function* () {
        const client = new Redis(url(), RedisStorage.noResendOptions)
        yield* Effect.addFinalizer(() => promise(() => client.quit()))
        const ref = contract()
        yield* Effect.provide(
          Effect.flatMap(CreditEngine, (engine) => engine.openHolder(ref)),
          engineWith(RedisStorage.layerFromClient(client, { keyPrefix: "own-client:" })),
        )
        expect(client.status).toBe("ready")
        expect(yield* promise(() => client.ping())).toBe("PONG")
        expect(yield* promise(() => client.exists(keyLayout("own-client:").holder(ref).holder))).toBe(1)
      }).pipe(Effect.scoped),
    )

    it.live("a caller's lazy client is connected, and still not closed", () =>
      Effect.gen(function* () {
        const client = new Redis(url(), { ...RedisStorage.noResendOptions, lazyConnect: true })
        yield* Effect.addFinalizer(() => promise(() => client.quit()))
        expect(client.status).toBe("wait")
        yield* Effect.flatMap(Effect.scoped(Layer.build(RedisStorage.layerFromClient(client))), (context) =>
          Storage.pipe(
            Effect.flatMap((s) => s.ping),
            Effect.provide(context),
          ),
        )
        expect(client.status).toBe("ready")
      }).pipe(Effect.scoped),
    )

    it.live("a caller's client that could send a command twice or late is refused, naming the settings", () =>
      Effect.gen(function* () {
        const refused = (options: RedisOptions) =>
          Effect.gen(function* () {
            const client = new Redis(url(), { lazyConnect: true, ...options })
            yield* Effect.addFinalizer(() => Effect.sync(() => client.disconnect()))
            const error = yield* Effect.flip(RedisStorage.fromClient(client))
            expect(error._tag).toBe("StorageUnavailable")
            // Refused before it was even connected.
            expect(client.status).toBe("wait")
            return error.detail
          })
        const defaults = yield* refused({})
        expect(defaults).toContain("enableOfflineQueue must be false")
        expect(defaults).toContain("autoResendUnfulfilledCommands must be false")
        const { enableOfflineQueue: _, ...rest } = RedisStorage.noResendOptions
        expect(yield* refused(rest)).toContain("enableOfflineQueue must be false")
        const reconnecting = yield* refused({ ...RedisStorage.noResendOptions, reconnectOnError: () => 2 as const })
        expect(reconnecting).toContain("reconnectOnError must not be set")
        expect(reconnecting).not.toContain("enableOfflineQueue")
      }).pipe(Effect.scoped),
    )

    it.live("a caller's client with ioredis's own keyPrefix is refused", () =>
      Effect.gen(function* () {
        const client = new Redis(url(), { ...RedisStorage.noResendOptions, keyPrefix: "x:" })
        yield* Effect.addFinalizer(() => Effect.sync(() => client.disconnect()))
        const error = yield* Effect.flip(RedisStorage.fromClient(client))
        expect(error._tag).toBe("StorageUnavailable")
        expect(error.detail).toContain("keyPrefix")
      }).pipe(Effect.scoped),
    )

    it.live("a password is given as Redacted and never shows in errors", () =>
      Effect.gen(function* () {
        const password = `pw-${randomUUID()}`
        const guarded = yield* Effect.acquireRelease(
          promise(() => startServer({ args: ["--requirepass", password] })),
          (s) => promise(() => s.dispose()),
        )
        const ping = (options: RedisStorage.RedisStorageOptions) =>
          Effect.scoped(Effect.flatMap(RedisStorage.make({ port: guarded.port, ...options }), (s) => s.ping))
        yield* ping({ password: Redacted.make(password) })
        yield* ping({ url: Redacted.make(`redis://:${password}@127.0.0.1:${guarded.port}`) })
        const wrong = `wrong-${randomUUID()}`
        const refused = yield* Effect.flip(ping({ password: Redacted.make(wrong), connectTimeout: "2 seconds" }))
        expect(refused._tag).toBe("StorageUnavailable")
        expect(refused.detail).toContain("WRONGPASS")
        expect(JSON.stringify(refused)).not.toContain(wrong)
        expect(String(refused.cause)).not.toContain(wrong)
        expect((yield* Effect.flip(ping({ connectTimeout: "2 seconds" })))._tag).toBe("StorageUnavailable")
      }).pipe(Effect.scoped),
    )

    it.live("a server that cannot be reached fails the layer with StorageUnavailable, in bounded time", () =>
      Effect.gen(function* () {
        const port = yield* promise(freePort)
        const started = Date.now()
        const error = yield* Effect.flip(
          Effect.scoped(RedisStorage.make({ port, connectTimeout: "500 millis", commandTimeout: "500 millis" })),
        )
        expect(error._tag).toBe("StorageUnavailable")
        expect(Date.now() - started).toBeLessThan(3_000)
      }),
    )

    it.live("layerConfig reads the options from Config", () =>
      Effect.gen(function* () {
        const prefix = uniquePrefix("config")
        const ref = contract()
        const configured = RedisStorage.layerConfig({
          url: Config.redacted("REDIS_URL"),
          keyPrefix: Config.string("REDIS_KEY_PREFIX"),
          commandTimeout: Config.duration("REDIS_COMMAND_TIMEOUT"),
        }).pipe(
          Layer.provide(
            Layer.setConfigProvider(
              ConfigProvider.fromMap(
                new Map([
                  ["REDIS_URL", url()],
                  ["REDIS_KEY_PREFIX", prefix],
                  ["REDIS_COMMAND_TIMEOUT", "2 seconds"],
                ]),
              ),
            ),
          ),
        )
        yield* Effect.provide(
          Effect.flatMap(CreditEngine, (engine) => engine.openHolder(ref)),
          engineWith(configured),
        )
        expect(yield* promise(() => raw().exists(keyLayout(prefix).holder(ref).holder))).toBe(1)
        const missing = yield* Effect.flip(
          Layer.build(
            RedisStorage.layerConfig({ url: Config.string("REDIS_URL") }).pipe(
              Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map()))),
            ),
          ).pipe(Effect.scoped),
        )
        expect(ConfigError.isConfigError(missing)).toBe(true)
      }),
    )

    it.live(
      "the library's own client never queues a call: while Redis is down a commit fails at once, not applied",
      () =>
        Effect.gen(function* () {
          const own = yield* Effect.acquireRelease(
            // With AOF, so that the holder survives the restart.
            promise(() => startServer({ args: ["--appendonly", "yes", "--appendfsync", "always"] })),
            (s) => promise(() => s.dispose()),
          )
          const storage = yield* RedisStorage.make({ url: own.url, commandTimeout: "2 seconds" })
          const ref = contract()
          expect(yield* storage.commit(opening(ref))).toEqual({ _tag: "Committed", revision: 1 })
          const stored = Option.getOrThrow(yield* storage.load(ref))
          yield* promise(() => own.stop())
          const started = Date.now()
          const answer = yield* Effect.flip(storage.commit(creditRequest(stored, 5)))
          // Refused on the spot (no offline queue), not after the command timeout.
          expect(answer._tag).toBe("StorageUnavailable")
          expect(Date.now() - started).toBeLessThan(500)
          // And never sent once Redis is back.
          yield* promise(() => own.restart())
          yield* until("the client reconnected", Effect.map(Effect.either(storage.ping), Either.isRight))
          yield* sleep(300)
          expect(yield* storage.load(ref)).toEqual(Option.some(stored))
        }).pipe(Effect.scoped),
    )

    it.live(
      "the library's own client answers a commit whose connection closed at once, as unknown, and never resends it",
      () =>
        Effect.gen(function* () {
          const prefix = uniquePrefix("closed")
          const cutter = yield* proxy(Number(new URL(url()).port))
          const storage = yield* RedisStorage.make({
            port: cutter.port,
            keyPrefix: prefix,
            commandTimeout: "2 seconds",
          })
          const ref = contract()
          expect(yield* storage.commit(opening(ref))).toEqual({ _tag: "Committed", revision: 1 })
          const stored = Option.getOrThrow(yield* storage.load(ref))
          cutter.loseReplyTo(Scripts.commit.sha)
          const started = Date.now()
          const answer = yield* Effect.flip(storage.commit(creditRequest(stored, 5)))
          // Rejected when the connection closed (maxRetriesPerRequest: 0), not after the command
          // timeout; and not because a resend was attempted (which the write guard would stop).
          expect(answer._tag).toBe("OutcomeUnknown")
          expect(Date.now() - started).toBeLessThan(500)
          expect(answer.detail).not.toContain("suppressed")
          // It ran once (its reply was lost), and was not sent again after the reconnection.
          yield* until("the client reconnected", Effect.map(Effect.either(storage.ping), Either.isRight))
          yield* sleep(300)
          expect(Option.map(yield* storage.load(ref), (s) => s.revision)).toEqual(Option.some(2))
          expect(yield* storage.journal(ref, { afterSeq: 0, limit: 10 })).toHaveLength(2)
        }).pipe(Effect.scoped),
    )

    it("a missing redis-server fails with how to install it", () => {
      expect(() => requireBinary(`redis-server-missing-${randomUUID()}`)).toThrow(/apt-get install redis-server/)
    })
  })

  describe("failures become StorageUnavailable", () => {
    const prefix = uniquePrefix("corrupt")
    const layout = keyLayout(prefix)

    it.live("a document that does not decode", () =>
      withEngine(
        prefix,
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          yield* engine.openHolder(ref)
          const key = layout.holder(ref).holder
          yield* promise(() => raw().hset(key, "doc", "{not json"))
          expect((yield* Effect.flip(engine.getCredit(ref)))._tag).toBe("StorageUnavailable")
          yield* promise(() => raw().hset(key, "doc", JSON.stringify({ format: 99 })))
          expect((yield* Effect.flip(engine.getCredit(ref))).detail).toContain("format")
          yield* promise(() => raw().hset(key, "rev", "one"))
          expect((yield* Effect.flip(engine.lock(ref)))._tag).toBe("StorageUnavailable")
        }),
      ),
    )

    it.live("a journal entry or an index member that does not decode", () =>
      withEngine(
        prefix,
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          yield* engine.openHolder(ref)
          yield* promise(() => raw().lset(layout.holder(ref).journal, 0, "]"))
          expect((yield* Effect.flip(engine.journal(ref)))._tag).toBe("StorageUnavailable")
          expect((yield* Effect.flip(engine.verify(ref)))._tag).toBe("StorageUnavailable")
          yield* promise(() => raw().sadd(layout.index({ kind: "customer", value: ref.customerId }), "no-slashes"))
          const storage = yield* Storage
          expect((yield* Effect.flip(storage.lookup({ kind: "customer", value: ref.customerId })))._tag).toBe(
            "StorageUnavailable",
          )
        }),
      ),
    )

    it.live("a commit meeting a key of the wrong type writes nothing at all", () =>
      withEngine(
        prefix,
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const storage = yield* Storage
          const ref = contract()
          yield* engine.openHolder(ref)
          const { lock } = yield* engine.lock(ref)
          const keys = layout.holder(ref)
          const before = yield* promise(() => raw().hgetall(keys.holder))
          yield* promise(() => raw().del(keys.references))
          yield* promise(() => raw().set(keys.references, "not a hash"))
          const error = yield* Effect.flip(engine.modify(ref, lock.key, change("GBP", 7, "typed", "ref")))
          expect(error._tag).toBe("StorageUnavailable")
          expect(yield* promise(() => raw().hgetall(keys.holder))).toEqual(before)
          expect(yield* storage.journal(ref, { afterSeq: 0, limit: 10 })).toHaveLength(1)
          yield* promise(() => raw().del(keys.references))
          yield* engine.modify(ref, lock.key, change("GBP", 7, "typed", "ref"))
          expect((yield* engine.verify(ref)).ok).toBe(true)
        }),
      ),
    )
  })

  describe("scripts", () => {
    it.live("after SCRIPT FLUSH the scripts are loaded again and operations go on (NOSCRIPT)", () =>
      withEngine(
        uniquePrefix("noscript"),
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          yield* engine.openHolder(ref)
          yield* promise(() => raw().script("FLUSH"))
          expect(yield* promise(() => raw().script("EXISTS", Scripts.commit.sha, Scripts.findEntry.sha))).toEqual([
            0, 0,
          ])
          const { lock } = yield* engine.lock(ref)
          yield* engine.modify(ref, lock.key, change("GBP", 3, "r", "ref-noscript"))
          expect(yield* promise(() => raw().script("EXISTS", Scripts.commit.sha, Scripts.findEntry.sha))).toEqual([
            1, 1,
          ])
          expect((yield* engine.modify(ref, lock.key, change("GBP", 3, "r", "ref-noscript"))).replayed).toBe(true)
          expect((yield* engine.getCredit(ref)).current.credit[0]?.amount.value).toBe(3)
        }),
      ),
    )

    it.live("the same commit sent twice (a resend after a lost reply) is applied once and answered committed", () =>
      Effect.gen(function* () {
        const layout = keyLayout(uniquePrefix("resend"))
        const ref = contract()
        const keys = layout.holder(ref)
        const run = (commitId: string, expected: string) =>
          promise(() =>
            raw().evalsha(
              Scripts.commit.sha,
              6,
              keys.holder,
              keys.journal,
              keys.ids,
              keys.references,
              keys.claims,
              layout.index({ kind: "customer", value: ref.customerId }),
              expected,
              "1",
              "{}",
              commitId,
              holderKey(ref),
              "1",
              "0",
              '{"id":"e1"}',
              "e1",
              "0",
              "",
            ),
          )
        yield* promise(() => raw().script("LOAD", Scripts.commit.lua))
        const commitId = randomUUID()
        expect(yield* run(commitId, "absent")).toBe(1)
        expect(yield* run(commitId, "absent")).toBe(1)
        expect(yield* run(randomUUID(), "absent")).toBe(0)
        expect(yield* promise(() => raw().llen(keys.journal))).toBe(1)
        expect(yield* promise(() => raw().hget(keys.holder, "rev"))).toBe("1")
      }),
    )
  })

  describe("cross-slot indexes", () => {
    it.live("a pointer left by a commit that failed is discarded by lookups' callers", () => {
      const prefix = uniquePrefix("stale")
      const layout = keyLayout(prefix)
      return withEngine(
        prefix,
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          const balanceGroupId = `bg-${randomUUID()}`
          const journalKey = layout.holder(ref).journal
          // Make the commit script fail after the claim was written.
          yield* promise(() => raw().set(journalKey, "not a list"))
          expect((yield* Effect.flip(engine.openHolder(ref, { balanceGroupId })))._tag).toBe("StorageUnavailable")
          // The claim was written before the script and is left; on a standalone server the
          // script writes the subscription pointer, so it failed with the script…
          expect(yield* promise(() => raw().get(layout.claim(balanceGroupId)))).toBe(holderKey(ref))
          const pointer = layout.index({ kind: "subscription", value: ref.holderId })
          expect(yield* promise(() => raw().smembers(pointer))).toEqual([])
          // …while on a Cluster it is written before the script and left: the same stale pointer.
          yield* promise(() => raw().sadd(pointer, holderKey(ref)))
          // An unconfirmed claim is nobody's alias; the stale pointer is discarded by the engine.
          expect(
            yield* Effect.flatMap(Storage, (s) => s.lookup({ kind: "balanceGroup", value: balanceGroupId })),
          ).toEqual([])
          expect((yield* Effect.flip(engine.getCreditLimits(balanceGroupId)))._tag).toBe("HolderNotFound")
          expect((yield* Effect.flip(engine.unlockCustomer({ subscriptionId: ref.holderId })))._tag).toBe(
            "HolderNotFound",
          )
          yield* promise(() => raw().del(journalKey))
          yield* engine.openHolder(ref, { balanceGroupId })
          expect((yield* engine.getCreditLimits(balanceGroupId)).holder).toEqual(ref)
        }),
      )
    })

    it.live("rebuildIndexes restores every cross-slot pointer from the holders and journals", () => {
      const prefix = uniquePrefix("rebuild")
      const layout = keyLayout(prefix)
      return withEngine(
        prefix,
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const customerId = freshCustomer()
          const sub = contract(customerId)
          const cust = customerHolder(customerId)
          const balanceGroupId = `bg-${randomUUID()}`
          yield* engine.openHolder(sub, { balanceGroupId })
          yield* engine.openHolder(cust)
          const { lock } = yield* engine.lock(sub)
          const modified = yield* engine.modify(sub, lock.key, change("GBP", 9, "r", `order-${customerId}`))

          const claimKey = layout.claim(balanceGroupId)
          const confirmed = layout.holder(sub).claims
          const indexKeys = (yield* keysUnder(prefix)).filter((k) => k.includes(":ix:"))
          const crossSlot = indexKeys.filter((k) => !k.startsWith(`${prefix}cl:{${escapeId(customerId)}}`))
          // subscription, three entry ids (two opens, one modification), one reference
          expect(crossSlot).toHaveLength(5)
          expect(yield* promise(() => raw().get(claimKey))).toBe(holderKey(sub))
          // The cross-slot pointers and the claim are lost; so is the confirmation of the claim.
          yield* promise(() => raw().del(...crossSlot, claimKey, confirmed))

          expect((yield* Effect.flip(engine.unlockCustomer({ subscriptionId: sub.holderId })))._tag).toBe(
            "HolderNotFound",
          )
          expect((yield* Effect.flip(engine.unlockCustomer({ orderId: modified.entryId })))._tag).toBe("HolderNotFound")
          expect((yield* Effect.flip(engine.getCreditLimits(balanceGroupId)))._tag).toBe("HolderNotFound")

          const report = yield* RedisStorage.rebuildIndexes(raw(), { keyPrefix: prefix, scanCount: 2 })
          // per holder: customer (and subscription); per entry: its id (and reference); one claim
          expect(report).toEqual({
            holders: 2,
            entries: 3,
            indexed: 7,
            added: 5,
            claims: 1,
            claimsAdded: 1,
            claimConflicts: [],
          })
          expect(yield* promise(() => raw().get(claimKey))).toBe(holderKey(sub))
          expect(yield* promise(() => raw().smembers(confirmed))).toEqual([balanceGroupId])
          expect([...(yield* keysUnder(prefix)).filter((k) => k.includes(":ix:"))].sort()).toEqual(
            [...indexKeys].sort(),
          )

          expect((yield* engine.unlockCustomer({ subscriptionId: sub.holderId })).released).toHaveLength(1)
          expect((yield* engine.unlockCustomer({ orderId: `order-${customerId}` })).customerId).toBe(customerId)
          expect((yield* engine.unlockCustomer({ orderId: modified.entryId })).customerId).toBe(customerId)
          expect((yield* engine.getCreditLimits(balanceGroupId)).holder).toEqual(sub)
          expect(claimKey).toBe(`${prefix}cl:{${balanceGroupId}}:bg`)

          const again = yield* RedisStorage.rebuildIndexes(raw(), { keyPrefix: prefix })
          expect(again.added).toBe(0)
          expect(again.claimsAdded).toBe(0)
          expect(again.holders).toBe(2)

          // A claim another holder took meanwhile is reported, not overwritten.
          const intruderRef = contract()
          const intruder = holderKey(intruderRef)
          yield* promise(() => raw().set(claimKey, intruder))
          const conflicted = yield* RedisStorage.rebuildIndexes(raw(), { keyPrefix: prefix })
          expect(conflicted.claimConflicts).toEqual([{ alias: balanceGroupId, holder: sub, claimedBy: intruderRef }])
          expect(yield* promise(() => raw().get(claimKey))).toBe(intruder)
        }),
      )
    })
  })
})
