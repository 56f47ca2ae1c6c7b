/**
 * Conformance: lock expiry judged by the engine's clock (`TestClock`), and lock extension, for
 * every adapter.
 *
 * @module
 */
import { CreditEngine, type CreditEngineOptions, engineLockRefusals, Storage } from "@creditlock/core"
import { encodeDocument } from "@creditlock/core/storage"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Metric, Option, Redacted, type Scope, TestClock } from "effect"
import { change, contract, creditValue, engineWith, expectRejected, type StorageLayer } from "./Harness.js"

export const ttlTests = (storage: StorageLayer) => {
  const provide = <A, E>(effect: Effect.Effect<A, E, CreditEngine | Storage>, ttl?: string) =>
    Effect.provide(effect, engineWith(storage, ttl === undefined ? {} : { lockTtl: ttl as "1 second" }))
  const provideScoped = <A, E>(effect: Effect.Effect<A, E, CreditEngine | Storage | Scope.Scope>) =>
    Effect.provide(effect, engineWith(storage))
  const withOptions = <A, E>(effect: Effect.Effect<A, E, CreditEngine | Storage>, options: CreditEngineOptions) =>
    Effect.provide(effect, engineWith(storage, options))
  const revision = (ref: Parameters<Storage["Type"]["load"]>[0]) =>
    Effect.flatMap(Storage, (s) => s.load(ref)).pipe(Effect.map((o) => Option.getOrThrow(o).revision))

  describe("lock TTL", () => {
    it.effect("a lock is live at 119.999 s and free at 120 s; the expired key is then refused", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          yield* engine.openHolder(ref)
          const first = yield* engine.lock(ref)
          yield* engine.modify(ref, first.lock.key, change("GBP", 100))

          yield* TestClock.adjust("119999 millis")
          yield* expectRejected(ref, "CreditLocked", engine.lock(ref))
          yield* engine.modify(ref, first.lock.key, change("GBP", 1))

          yield* TestClock.adjust("1 millis")
          const expired = yield* expectRejected(
            ref,
            "LockExpired",
            engine.modify(ref, first.lock.key, change("GBP", 1)),
          )
          expect(expired).toMatchObject({ code: "LOCK_EXPIRED", status: 423, expiredAt: new Date(120_000) })
          yield* expectRejected(ref, "LockNotHeld", engine.modify(ref, "never-granted", change("GBP", 1)))
          const second = yield* engine.lock(ref)
          expect(second.lock.expiry.getTime()).toBe(240_000)
          yield* expectRejected(ref, "LockKeyMismatch", engine.modify(ref, first.lock.key, change("GBP", 1)))
          yield* expectRejected(ref, "LockKeyMismatch", engine.unlock(ref, first.lock.key))
          yield* engine.modify(ref, second.lock.key, change("GBP", -1))
          expect(yield* creditValue(ref, "GBP")).toBe(100)
        }),
      ),
    )

    it.effect("modifications do not extend a lock", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          yield* engine.openHolder(ref)
          const { lock } = yield* engine.lock(ref)
          for (let i = 0; i < 12; i++) {
            yield* TestClock.adjust("10 seconds")
            if (i < 11) yield* engine.modify(ref, lock.key, change("GBP", 1))
          }
          yield* expectRejected(ref, "LockExpired", engine.modify(ref, lock.key, change("GBP", 1)))
          yield* engine.lock(ref)
        }),
      ),
    )

    it.effect("unlock with an expired key succeeds with nothing to release", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          yield* engine.openHolder(ref)
          const { lock } = yield* engine.lock(ref)
          yield* TestClock.adjust("2 minutes")
          yield* engine.unlock(ref, lock.key)
          yield* engine.lock(ref)
        }),
      ),
    )

    it.effect("the TTL is configurable", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          yield* engine.openHolder(ref)
          const { lock } = yield* engine.lock(ref)
          expect(lock.expiry.getTime()).toBe(5_000)
          yield* TestClock.adjust("4999 millis")
          yield* expectRejected(ref, "CreditLocked", engine.lock(ref))
          yield* TestClock.adjust("1 millis")
          yield* engine.lock(ref)
        }),
        "5 seconds",
      ),
    )
  })

  describe("lock extension", () => {
    it.scoped("moves the expiry to a TTL from now, keeps the token, and publishes LockExtended", () =>
      provideScoped(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const events = yield* engine.subscribe
          const ref = contract()
          yield* engine.openHolder(ref)
          const { lock } = yield* engine.lock(ref)
          yield* TestClock.adjust("60 seconds")
          const extended = yield* engine.extendLock(ref, lock.key)
          expect(extended.lock).toEqual({ expiry: new Date(180_000), token: lock.token })
          yield* TestClock.adjust("119999 millis")
          yield* expectRejected(ref, "CreditLocked", engine.lock(ref))
          yield* engine.modify(ref, lock.key, change("GBP", 1))
          yield* TestClock.adjust("1 millis")
          yield* expectRejected(ref, "LockExpired", engine.modify(ref, lock.key, change("GBP", 1)))
          const seen = yield* Effect.map(events.takeAll, (chunk) => [...chunk])
          expect(seen.map((e) => e._tag)).toEqual(["LockGranted", "LockExtended"])
          expect(seen[1]).toMatchObject({ expiresAt: new Date(180_000), token: lock.token, at: new Date(60_000) })
        }),
      ),
    )

    it.effect("never revives an expired lock, and refuses another key or no lock, changing nothing", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          yield* engine.openHolder(ref)
          yield* expectRejected(ref, "LockNotHeld", engine.extendLock(ref, "never-granted"))
          const { lock } = yield* engine.lock(ref)
          const mismatch = yield* expectRejected(ref, "LockKeyMismatch", engine.extendLock(ref, "another-key"))
          expect(mismatch).toMatchObject({ expiresAt: lock.expiry })
          yield* TestClock.adjust("120 seconds")
          const expired = yield* expectRejected(ref, "LockExpired", engine.extendLock(ref, lock.key))
          expect(expired).toMatchObject({ expiredAt: lock.expiry })
          // Free to lock again, by anyone: the extension attempt held nothing.
          const next = yield* engine.lock(ref)
          expect(next.lock.token).toBe(lock.token + 1)
          yield* expectRejected(ref, "LockKeyMismatch", engine.extendLock(ref, lock.key))
          const invalid = yield* expectRejected(ref, "InvalidRequest", engine.extendLock(ref, next.lock.key, 0))
          expect(invalid.detail).toContain("ttl")
        }),
      ),
    )

    it.effect("caps a lock's total lifetime, and never moves an expiry earlier (no write then)", () =>
      withOptions(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          yield* engine.openHolder(ref)
          const { lock } = yield* engine.lock(ref)
          expect(lock.expiry.getTime()).toBe(100_000)
          const expiries: Array<number> = []
          for (const at of [60_000, 120_000, 180_000, 240_000, 290_000]) {
            yield* TestClock.setTime(at)
            expiries.push((yield* engine.extendLock(ref, lock.key)).lock.expiry.getTime())
          }
          // Each extension aims at now + 100 s; the 300 s lifetime cap holds from 240 s on.
          expect(expiries).toEqual([160_000, 220_000, 280_000, 300_000, 300_000])
          const before = yield* revision(ref)
          expect((yield* engine.extendLock(ref, lock.key, "1 second")).lock.expiry.getTime()).toBe(300_000)
          expect(yield* revision(ref), "an extension that moves nothing writes nothing").toBe(before)
          yield* TestClock.setTime(300_000)
          yield* expectRejected(ref, "LockExpired", engine.extendLock(ref, lock.key))
          yield* engine.lock(ref)
        }),
        { lockTtl: "100 seconds", maxLockLifetime: "300 seconds" },
      ),
    )

    it.effect("a lifetime cap shorter than the TTL is refused when the engine is built", () =>
      Effect.gen(function* () {
        const failure = yield* Effect.flip(
          Effect.provide(CreditEngine, engineWith(storage, { lockTtl: "2 minutes", maxLockLifetime: "1 minute" })),
        )
        expect(failure).toMatchObject({ _tag: "InvalidRequest" })
        expect((failure as { detail: string }).detail).toContain("maxLockLifetime")
      }),
    )
  })

  describe("withLock", () => {
    it.effect("runs the work with the lock and releases it; the work's failure passes through, released too", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          yield* engine.openHolder(ref)
          const value = yield* engine.withLock(ref, ({ lock }) =>
            Effect.as(engine.modify(ref, lock.key, change("GBP", 40, "billed", "bill-1")), "done"),
          )
          expect(value).toBe("done")
          const failed = yield* Effect.flip(
            engine.withLock(ref, ({ lock }) =>
              Effect.zipRight(engine.modify(ref, lock.key, change("GBP", 1)), Effect.fail("the work failed" as const)),
            ),
          )
          expect(failed).toBe("the work failed")
          // Released both times: a plain lock is granted at once, with the third token.
          expect((yield* engine.lock(ref)).lock.token).toBe(3)
          expect(yield* creditValue(ref, "GBP")).toBe(41)
        }),
      ),
    )

    it.live("callers of one engine waiting for a holder take it in the order they came", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          yield* engine.openHolder(ref)
          const { lock } = yield* engine.lock(ref)
          const refusals = Effect.map(
            Metric.value(
              engineLockRefusals.pipe(Metric.tagged("operation", "lock"), Metric.tagged("reason", "CreditLocked")),
            ),
            (state) => state.count,
          )
          const order: Array<number> = []
          const bill = (i: number) =>
            Effect.fork(
              engine.withLock(ref, ({ lock }) =>
                Effect.zipRight(
                  Effect.sync(() => order.push(i)),
                  engine.modify(ref, lock.key, change("GBP", 1)),
                ),
              ),
            )
          const before = yield* refusals
          const callers = [yield* bill(0)]
          // The first is refused and queued; the others find it waiting and join behind it as they start.
          while ((yield* refusals) === before) yield* Effect.sleep("1 millis")
          for (let i = 1; i < 5; i++) {
            callers.push(yield* bill(i))
            yield* Effect.sleep("10 millis")
          }
          yield* engine.unlock(ref, lock.key)
          yield* Fiber.joinAll(callers)
          expect(order).toEqual([0, 1, 2, 3, 4])
          expect(yield* creditValue(ref, "GBP")).toBe(5)
        }),
      ),
    )

    it.effect("waits out a contended lock, never past its expiry, and gives up at the deadline", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          yield* engine.openHolder(ref)
          const other = yield* engine.lock(ref)
          const impatient = yield* Effect.flip(engine.withLock(ref, () => Effect.void, { wait: 0 }))
          expect(impatient).toMatchObject({ _tag: "CreditLocked", expiresAt: other.lock.expiry })
          const short = yield* Effect.fork(engine.withLock(ref, () => Effect.void, { wait: "10 seconds" }))
          yield* TestClock.adjust("11 seconds")
          expect(yield* Effect.flip(short.await.pipe(Effect.flatten))).toMatchObject({ _tag: "CreditLocked" })
          const patient = yield* Effect.fork(
            engine.withLock(ref, ({ lock }) => Effect.succeed(lock.token), { wait: "5 minutes" }),
          )
          yield* TestClock.adjust("108 seconds")
          expect(patient.unsafePoll(), "still waiting while the other lock lives").toBeNull()
          yield* TestClock.adjust("1 second")
          expect(yield* patient.await.pipe(Effect.flatten), "granted at the other lock's expiry").toBe(
            other.lock.token + 1,
          )
        }),
      ),
    )

    it.effect("interrupted while the work runs: the lock is released", () =>
      provide(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const ref = contract()
          yield* engine.openHolder(ref)
          const running = yield* Effect.fork(engine.withLock(ref, () => Effect.never))
          yield* TestClock.adjust("1 second")
          yield* expectRejected(ref, "CreditLocked", engine.lock(ref))
          yield* Fiber.interrupt(running)
          yield* engine.lock(ref)
        }),
      ),
    )

    it.effect(
      "a lock that ran out while the work ran is LockExpired, taken over or not; an admin release is LockNotHeld",
      () =>
        provide(
          Effect.gen(function* () {
            const engine = yield* CreditEngine
            const ref = contract()
            yield* engine.openHolder(ref)
            const expired = yield* Effect.flip(engine.withLock(ref, () => TestClock.adjust("121 seconds")))
            expect(expired).toMatchObject({ _tag: "LockExpired", code: "LOCK_EXPIRED" })
            const takenOver = yield* Effect.flip(
              engine.withLock(ref, () => Effect.zipRight(TestClock.adjust("121 seconds"), engine.lock(ref))),
            )
            expect(takenOver).toMatchObject({ _tag: "LockExpired" })
            yield* TestClock.adjust("121 seconds")
            const released = yield* Effect.flip(
              engine.withLock(ref, () => engine.unlockCustomer({ customerId: ref.customerId })),
            )
            expect(released).toMatchObject({ _tag: "LockNotHeld" })
            const invalid = yield* Effect.flip(engine.withLock(ref, () => Effect.void, { wait: -1 }))
            expect(invalid).toMatchObject({ _tag: "InvalidRequest" })
          }),
        ),
    )
  })

  describe("lock retries with a reference", () => {
    const secret = "a-deployment-secret-of-32-characters!"
    it.effect("a retry while the lock lives returns the same lock, with no write; the key is never stored", () =>
      withOptions(
        Effect.gen(function* () {
          const engine = yield* CreditEngine
          const storage = yield* Storage
          const ref = contract()
          yield* engine.openHolder(ref)
          const first = yield* engine.lock(ref, { reference: "grant-1" })
          const before = yield* revision(ref)
          yield* TestClock.adjust("30 seconds")
          const retry = yield* engine.lock(ref, { reference: "grant-1" })
          expect(Redacted.value(retry.lock.key)).toBe(Redacted.value(first.lock.key))
          expect(retry.lock).toMatchObject({ expiry: first.lock.expiry, token: first.lock.token })
          expect(yield* revision(ref), "a retry writes nothing").toBe(before)
          yield* expectRejected(ref, "CreditLocked", engine.lock(ref, { reference: "grant-2" }))
          yield* expectRejected(ref, "CreditLocked", engine.lock(ref))
          const stored = Option.getOrThrow(yield* storage.load(ref))
          expect(encodeDocument(stored.document)).not.toContain(Redacted.value(first.lock.key))
          expect(encodeDocument(stored.document)).not.toContain("grant-1")
          // Once the lock is released (or expired), the same reference is a new grant.
          yield* engine.unlock(ref, first.lock.key)
          const again = yield* engine.lock(ref, { reference: "grant-1" })
          expect(Redacted.value(again.lock.key)).not.toBe(Redacted.value(first.lock.key))
          expect(again.lock.token).toBe(first.lock.token + 1)
          yield* TestClock.adjust("121 seconds")
          const afterExpiry = yield* engine.lock(ref, { reference: "grant-1" })
          expect(afterExpiry.lock.token).toBe(again.lock.token + 1)
          yield* expectRejected(ref, "InvalidRequest", engine.lock(ref, { reference: "" }))
        }),
        { lockKeySecret: secret },
      ),
    )

    it.effect("the fencing token continues across engines over the same storage (a restart)", () =>
      Effect.gen(function* () {
        const ref = contract()
        const grantAndRelease = Effect.provide(
          Effect.flatMap(CreditEngine, (e) =>
            Effect.gen(function* () {
              yield* e.openHolder(ref)
              const { lock } = yield* e.lock(ref)
              yield* e.unlock(ref, lock.key)
              return lock.token
            }),
          ),
          CreditEngine.layer(),
        )
        const tokens = yield* Effect.provide(Effect.all([grantAndRelease, grantAndRelease, grantAndRelease]), storage)
        expect(tokens).toEqual([1, 2, 3])
      }),
    )

    it.effect("engines that share the secret answer each other's retries; another secret gets CreditLocked", () =>
      Effect.gen(function* () {
        const ref = contract()
        const viaOne = Effect.provide(
          Effect.flatMap(CreditEngine, (e) => Effect.zipRight(e.openHolder(ref), e.lock(ref, { reference: "r-9" }))),
          CreditEngine.layer({ lockKeySecret: secret }),
        )
        const viaTwo = (lockKeySecret: string) =>
          Effect.provide(
            Effect.flatMap(CreditEngine, (e) => e.lock(ref, { reference: "r-9" })),
            CreditEngine.layer({ lockKeySecret }),
          )
        const program = Effect.gen(function* () {
          const first = yield* viaOne
          const same = yield* viaTwo(secret)
          expect(Redacted.value(same.lock.key)).toBe(Redacted.value(first.lock.key))
          const other = yield* Effect.flip(viaTwo("another-secret-of-thirty-two-characters"))
          expect(other).toMatchObject({ _tag: "CreditLocked", expiresAt: first.lock.expiry })
          const short = yield* Effect.flip(viaTwo("too short"))
          expect(short).toMatchObject({ _tag: "InvalidRequest" })
        })
        yield* Effect.provide(program, storage)
      }),
    )
  })
}
