/**
 * Conformance: the engine's snapshot cache and per-holder turns, over the adapter. A snapshot made
 * stale by another writer (another engine on the same storage, as another process would be)
 * never commits; answers that write nothing are checked on a fresh load but for a `CreditLocked`
 * refusal at most `maxAge` old; operations of one engine on one holder take turns, so they never
 * conflict with each other; an operation interrupted while waiting for its turn leaves the holder
 * usable; the cache is bounded, and switched off it loads before every write. The engine's
 * metrics for conflicts, lock waits and holds, and thresholds are read back as well.
 *
 * @module
 */
import {
  CreditEngine,
  type CreditEngineOptions,
  engineCommitConflicts,
  engineCommitRetries,
  engineLockHold,
  engineLockWait,
  engineThresholdEvents,
} from "@creditlock/core"
import { Storage, StorageUnavailable } from "@creditlock/core/storage"
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Metric, Option } from "effect"
import { change, contract, type StorageLayer, wrapStorage } from "./Harness.js"

/** The count of a counter or histogram with these labels. */
const countOf = <Type, State extends { readonly count: number }>(
  metric: Metric.Metric<Type, number, State>,
  ...labels: ReadonlyArray<readonly [string, string]>
) => Metric.value(labels.reduce((m, [k, v]) => Metric.tagged(m, k, v), metric)).pipe(Effect.map((state) => state.count))

/** Engines over one storage (built once), each with its options; and the storage itself. */
const enginesOver = (storage: StorageLayer, ...options: ReadonlyArray<CreditEngineOptions>) =>
  Effect.gen(function* () {
    const shared = yield* Layer.build(storage)
    const engines = yield* Effect.forEach(options, (o) =>
      Effect.map(Effect.provide(Layer.build(CreditEngine.layer(o)), shared), (c) => Context.get(c, CreditEngine)),
    )
    return { engines, storage: Context.get(shared, Storage) }
  })

/** `storage` with a count of its loads, and a yield before each load and commit (so fibers interleave). */
const countingLoads = (storage: StorageLayer) => {
  const counts = { loads: 0 }
  const layer = wrapStorage(storage, (s) => ({
    load: (ref) =>
      Effect.zipRight(
        Effect.sync(() => {
          counts.loads++
        }),
        Effect.zipRight(Effect.yieldNow(), s.load(ref)),
      ),
    commit: (request) => Effect.zipRight(Effect.yieldNow(), s.commit(request)),
  }))
  return { layer, counts }
}

/** `storage` whose commits, while `holding.on`, say so (`held`) and wait for `latch`. */
const holdingCommits = (storage: StorageLayer) =>
  Effect.gen(function* () {
    const latch = yield* Deferred.make<void>()
    const held = yield* Deferred.make<void>()
    const holding = { on: false }
    const layer = wrapStorage(storage, (s) => ({
      commit: (request) =>
        holding.on
          ? Effect.zipRight(
              Effect.zipRight(Deferred.succeed(held, undefined), Deferred.await(latch)),
              s.commit(request),
            )
          : s.commit(request),
    }))
    return { layer, latch, held, holding }
  })

/** One engine over `holdingCommits(storage)`, and a holder it opened. */
const heldEngine = (storage: StorageLayer) =>
  Effect.gen(function* () {
    const { layer, latch, held, holding } = yield* holdingCommits(storage)
    const {
      engines: [engine],
    } = yield* enginesOver(layer, {})
    if (engine === undefined) return yield* Effect.dieMessage("one engine")
    const ref = contract()
    yield* engine.openHolder(ref)
    return { engine, ref, latch, held, holding }
  })

export const cacheTests = (storage: StorageLayer) =>
  describe("snapshot cache", () => {
    it.scoped("a snapshot made stale by another engine never commits: the write is planned again on a load", () =>
      Effect.gen(function* () {
        const {
          engines: [a, b],
        } = yield* enginesOver(storage, {}, {})
        if (a === undefined || b === undefined) return yield* Effect.dieMessage("two engines")
        const ref = contract()
        yield* a.openHolder(ref)
        const first = yield* a.lock(ref)
        yield* a.modify(ref, first.lock.key, change("GBP", 100))
        yield* a.unlock(ref, first.lock.key)
        // Another writer moves the holder on; `a` still holds the snapshot it committed last.
        const other = yield* b.lock(ref)
        yield* b.modify(ref, other.lock.key, change("GBP", 50))
        yield* b.unlock(ref, other.lock.key)
        const conflicts = yield* countOf(engineCommitConflicts, ["operation", "lock"])
        const stale = yield* countOf(engineCommitRetries, ["operation", "lock"], ["reason", "stale_snapshot"])
        const again = yield* a.lock(ref)
        expect(yield* countOf(engineCommitConflicts, ["operation", "lock"])).toBe(conflicts + 1)
        expect(yield* countOf(engineCommitRetries, ["operation", "lock"], ["reason", "stale_snapshot"])).toBe(stale + 1)
        // Planned on the stale 100, this debit would be refused; on the holder as stored (150) it is not.
        const debited = yield* a.modify(ref, again.lock.key, change("GBP", -120))
        expect(debited.current.credit[0]?.amount.value).toBe(30)
        expect(again.lock.token).toBe(3)
        yield* a.unlock(ref, again.lock.key)
        expect((yield* b.verify(ref)).ok).toBe(true)
        expect((yield* b.getCredit(ref)).current.credit[0]?.amount.value).toBe(30)
      }),
    )

    it.scoped("a lock taken through another engine is usable at once: only CreditLocked may come from a snapshot", () =>
      Effect.gen(function* () {
        const {
          engines: [a, b],
        } = yield* enginesOver(storage, { snapshotCache: { maxAge: "1 minute" } }, { snapshotCache: { maxAge: 0 } })
        if (a === undefined || b === undefined) return yield* Effect.dieMessage("two engines")
        const ref = contract()
        yield* a.openHolder(ref)
        // `a`'s snapshot shows no lock; the lock is taken elsewhere, and its key brought here.
        const { lock } = yield* b.lock(ref)
        const modified = yield* a.modify(ref, lock.key, change("GBP", 5))
        expect(modified.current.credit[0]?.amount.value).toBe(5)
        yield* a.unlock(ref, lock.key)
        expect((yield* b.tryLock(ref)).granted).toBe(true)
      }),
    )

    it.live("a CreditLocked refusal is at most maxAge old", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const maxAge = 300
          const {
            engines: [a, b, fresh],
          } = yield* enginesOver(storage, { snapshotCache: { maxAge } }, {}, { snapshotCache: { maxAge: 0 } })
          if (a === undefined || b === undefined || fresh === undefined) return yield* Effect.dieMessage("engines")
          const ref = contract()
          yield* a.openHolder(ref)
          const { lock } = yield* b.lock(ref)
          const seen = Date.now()
          expect((yield* a.tryLock(ref)).granted).toBe(false)
          expect((yield* fresh.tryLock(ref)).granted).toBe(false)
          yield* b.unlock(ref, lock.key)
          // With no window, the release is seen at once.
          const now = yield* fresh.tryLock(ref)
          expect(now.granted).toBe(true)
          if (now.granted) yield* fresh.unlock(ref, now.lock.key)
          // Within the window, `a` may answer from its snapshot (it does, unless this machine stalled).
          const early = yield* a.tryLock(ref)
          expect(early.granted === false || Date.now() - seen > maxAge).toBe(true)
          if (early.granted) yield* a.unlock(ref, early.lock.key)
          yield* Effect.sleep(maxAge + 50)
          expect((yield* a.tryLock(ref)).granted).toBe(true)
        }),
      ),
    )

    it.scoped("operations of one engine on one holder take turns: contenders in one process never conflict", () =>
      Effect.gen(function* () {
        const { layer } = countingLoads(storage)
        const {
          engines: [engine],
        } = yield* enginesOver(layer, {})
        if (engine === undefined) return yield* Effect.dieMessage("one engine")
        const ref = contract()
        yield* engine.openHolder(ref)
        const before = yield* Effect.forEach(["lock", "modify", "unlock"], (op) =>
          countOf(engineCommitConflicts, ["operation", op]),
        )
        let applied = 0
        const worker = Effect.gen(function* () {
          for (let done = 0; done < 5; ) {
            const attempt = yield* engine.tryLock(ref)
            if (!attempt.granted) {
              yield* Effect.yieldNow()
              continue
            }
            yield* engine.modify(ref, attempt.lock.key, change("GBP", 1))
            applied++
            yield* engine.unlock(ref, attempt.lock.key)
            done++
          }
        })
        yield* Effect.all(
          Array.from({ length: 8 }, () => worker),
          { concurrency: "unbounded" },
        )
        expect(applied).toBe(40)
        expect((yield* engine.getCredit(ref)).current.credit[0]?.amount.value).toBe(40)
        const after = yield* Effect.forEach(["lock", "modify", "unlock"], (op) =>
          countOf(engineCommitConflicts, ["operation", op]),
        )
        expect(after).toEqual(before)
      }),
    )

    it.scoped("an operation interrupted while it waits for its turn leaves the holder usable", () =>
      Effect.gen(function* () {
        const { engine, ref, latch, held, holding } = yield* heldEngine(storage)
        holding.on = true
        const first = yield* Effect.fork(engine.lock(ref))
        yield* Deferred.await(held)
        holding.on = false
        const waiting = yield* Effect.fork(engine.lock(ref))
        yield* Effect.yieldNow()
        yield* Fiber.interrupt(waiting)
        yield* Deferred.succeed(latch, undefined)
        const granted = yield* Fiber.join(first)
        yield* engine.unlock(ref, granted.lock.key)
        const next = yield* engine.lock(ref).pipe(Effect.timeout("5 seconds"))
        expect(next.lock.token).toBe(2)
      }),
    )

    it.scoped(
      "a tryLock that comes while this engine is releasing the holder waits for the release and is granted",
      () =>
        Effect.gen(function* () {
          const { engine, ref, latch, held, holding } = yield* heldEngine(storage)
          const { lock } = yield* engine.lock(ref)
          holding.on = true
          const release = yield* Effect.fork(engine.unlock(ref, lock.key))
          // The release's commit is in the storage; the snapshot still shows the lock.
          yield* Deferred.await(held)
          holding.on = false
          const attempt = yield* Effect.fork(engine.tryLock(ref))
          yield* Effect.repeatN(Effect.yieldNow(), 10)
          // Waiting for its turn behind the release, not answered from the snapshot.
          expect(Option.isNone(yield* Fiber.poll(attempt))).toBe(true)
          yield* Deferred.succeed(latch, undefined)
          yield* Fiber.join(release)
          const answer = yield* Fiber.join(attempt)
          expect(answer.granted).toBe(true)
          if (answer.granted) expect(answer.lock.token).toBe(2)
        }),
    )

    it.scoped("the cache is bounded by maxHolders; switched off, every write loads first", () =>
      Effect.gen(function* () {
        const cycle = (engine: CreditEngine["Type"], ref: ReturnType<typeof contract>) =>
          Effect.gen(function* () {
            const { lock } = yield* engine.lock(ref)
            yield* engine.modify(ref, lock.key, change("GBP", 1))
            yield* engine.unlock(ref, lock.key)
          })
        const loadsPerCycle = (options: CreditEngineOptions) =>
          Effect.gen(function* () {
            const { layer, counts } = countingLoads(storage)
            const {
              engines: [engine],
            } = yield* enginesOver(layer, options)
            if (engine === undefined) return yield* Effect.dieMessage("one engine")
            const refs = [contract(), contract()]
            for (const ref of refs) {
              yield* engine.openHolder(ref)
              yield* cycle(engine, ref)
            }
            const before = counts.loads
            for (let i = 0; i < 3; i++) for (const ref of refs) yield* cycle(engine, ref)
            return (counts.loads - before) / 6
          })
        expect(yield* loadsPerCycle({})).toBe(0)
        // One holder kept: alternating between two, each operation's first attempt loads.
        expect(yield* loadsPerCycle({ snapshotCache: { maxHolders: 1 } })).toBe(1)
        expect(yield* loadsPerCycle({ snapshotCache: false })).toBe(3)
      }),
    )

    it.scoped("after a storage failure every snapshot is forgotten (a failover may have lost writes)", () =>
      Effect.gen(function* () {
        const { layer, counts } = countingLoads(storage)
        let failNextCommit = false
        const failing = wrapStorage(layer, (s) => ({
          commit: (request) =>
            Effect.suspend(() => {
              if (!failNextCommit) return s.commit(request)
              failNextCommit = false
              return Effect.fail(new StorageUnavailable({ detail: "the server went away" }))
            }),
        }))
        const {
          engines: [engine],
        } = yield* enginesOver(failing, {})
        if (engine === undefined) return yield* Effect.dieMessage("one engine")
        const [x, y] = [contract(), contract()]
        yield* engine.openHolder(x)
        yield* engine.openHolder(y)
        const { lock } = yield* engine.lock(y)
        failNextCommit = true
        expect((yield* Effect.flip(engine.lock(x)))._tag).toBe("StorageUnavailable")
        // The failure was on x; y's snapshot is forgotten too, so its next write loads first.
        const before = counts.loads
        yield* engine.unlock(y, lock.key)
        expect(counts.loads).toBe(before + 1)
        yield* engine.lock(y)
        expect(counts.loads).toBe(before + 1)
      }),
    )

    it.effect("cache options out of range are refused", () =>
      Effect.gen(function* () {
        for (const snapshotCache of [
          { maxHolders: 0 },
          { maxHolders: 1.5 },
          { maxAge: "2 minutes" },
          { maxAge: -1 },
          { size: 10 },
          "on",
        ]) {
          const error = yield* Effect.flip(
            Layer.build(CreditEngine.layer({ snapshotCache } as unknown as CreditEngineOptions)).pipe(
              Effect.provide(storage),
              Effect.scoped,
            ),
          )
          expect(error, JSON.stringify(snapshotCache)).toMatchObject({ _tag: "InvalidRequest" })
        }
      }),
    )

    it.live("metrics: lock waits and holds, threshold events", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const {
            engines: [engine],
          } = yield* enginesOver(storage, {})
          if (engine === undefined) return yield* Effect.dieMessage("one engine")
          const ref = contract()
          const alias = `bg-${ref.holderId}`
          yield* engine.openHolder(ref, { balanceGroupId: alias })
          const waits = yield* countOf(engineLockWait, ["outcome", "granted"])
          const refusedWaits = yield* countOf(engineLockWait, ["outcome", "refused"])
          const holds = yield* countOf(engineLockHold)
          const thresholds = yield* countOf(engineThresholdEvents, ["kind", "percentage"])
          const { lock } = yield* engine.lock(ref)
          const refused = yield* Effect.flip(engine.withLock(ref, () => Effect.void, { wait: "30 millis" }))
          expect(refused._tag).toBe("CreditLocked")
          expect(yield* countOf(engineLockWait, ["outcome", "refused"])).toBe(refusedWaits + 1)
          yield* engine.unlock(ref, lock.key)
          expect(yield* countOf(engineLockHold)).toBe(holds + 1)
          yield* engine.setCreditLimits(alias, { resourceId: 826, limit: "1.00", thresholds: "50" })
          yield* engine.withLock(ref, ({ lock }) => engine.modify(ref, lock.key, change("GBP", -60)))
          expect(yield* countOf(engineLockWait, ["outcome", "granted"])).toBe(waits + 1)
          expect(yield* countOf(engineLockHold)).toBe(holds + 2)
          expect(yield* countOf(engineThresholdEvents, ["kind", "percentage"])).toBe(thresholds + 1)
        }),
      ),
    )
  })
