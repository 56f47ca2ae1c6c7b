/**
 * Conformance: lock expiry judged by the engine's clock (`TestClock`), for every adapter.
 *
 * @module
 */
import { CreditEngine, type Storage } from "@creditlock/core"
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { change, contract, creditValue, engineWith, expectRejected, type StorageLayer } from "./Harness.js"

export const ttlTests = (storage: StorageLayer) => {
  const provide = <A, E>(effect: Effect.Effect<A, E, CreditEngine | Storage>, ttl?: string) =>
    Effect.provide(effect, engineWith(storage, ttl === undefined ? {} : { lockTtl: ttl as "1 second" }))

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
}
