/**
 * `withLock`'s queue: callers of one engine waiting for a holder's lock take it in the order they
 * were refused, only the first in line asks the store while they wait, and a caller that leaves
 * (interrupted, or at its deadline) passes its turn on. Over a store of one lock the test controls,
 * on the test clock, so every step is deterministic.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Either, Fiber, Redacted, TestClock } from "effect"
import { CreditLocked } from "../src/Errors.js"
import type { HolderRef } from "../src/Holder.js"
import { LockQueue, withLock } from "../src/internal/withLock.js"
import type { LockResult } from "../src/Lock.js"
import { holderKey } from "../src/Storage.js"

const ref: HolderRef = { customerId: "c-1", holderType: "contracts", holderId: "h-1" }

/** One holder's lock (who holds it, until when), every attempt to take it, and one engine's queue. */
const store = () => {
  const queue = new LockQueue()
  const state = { holder: null as string | null, until: 0, attempts: [] as Array<string>, order: [] as Array<string> }
  /** The engine's operations as `who` calls them. */
  const opsOf = (who: string) => ({
    queue,
    lock: () =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        state.attempts.push(who)
        if (state.holder !== null && now < state.until) {
          return Effect.fail(new CreditLocked({ detail: "locked", expiresAt: new Date(state.until) }))
        }
        state.holder = who
        state.until = now + 60_000
        const granted = { lock: { key: Redacted.make(who), expiry: new Date(state.until), token: 1 } }
        return Effect.succeed(granted as unknown as LockResult)
      }),
    release: (_ref: HolderRef, key: string) =>
      Effect.sync(() => {
        const released = state.holder === key
        if (released) state.holder = null
        queue.released(holderKey(ref))
        return { released, last: null }
      }),
  })
  /** `who` takes the lock outside withLock (another caller of the engine) for `millis`. */
  const take = (who: string, millis: number) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      state.holder = who
      state.until = now + millis
    })
  /** `who` releases it through the engine. */
  const release = (who: string) => opsOf(who).release(ref, who)
  /** withLock by `who`, whose work takes `millis`. */
  const call = (who: string, millis: number, wait = 30_000) =>
    withLock(opsOf(who))(
      ref,
      () =>
        Effect.gen(function* () {
          state.order.push(who)
          yield* Effect.sleep(millis)
        }),
      { wait },
    )
  return { state, queue, take, release, call }
}

/** Lets forked fibers run until each waits on the clock (the store answers at once). */
const settle = Effect.repeatN(Effect.yieldNow(), 20)

/** Starts `effect` and lets it run until it waits (refused and queued, or granted). */
const started = <A, E>(effect: Effect.Effect<A, E>) => Effect.zipLeft(Effect.fork(effect), settle)

/** Moves the clock `steps` times by `step`, letting every fiber run after each move. */
const advance = (steps: number, step: string) =>
  Effect.repeatN(Effect.zipRight(TestClock.adjust(step as "1 millis"), settle), steps - 1)

const attemptsBy = (attempts: ReadonlyArray<string>, who: string) => attempts.filter((a) => a === who).length

describe("withLock's queue", () => {
  it.effect("callers of one engine take the lock in the order they were refused; only the first in line polls", () =>
    Effect.gen(function* () {
      const { state, take, release, call } = store()
      yield* take("outside", 600_000)
      const names = ["w0", "w1", "w2", "w3", "w4"]
      const fibers: Array<Fiber.RuntimeFiber<void, unknown>> = []
      for (const name of names) {
        fibers.push(yield* started(call(name, 5)))
      }
      // 20 s of waiting (of 30): the first in line polls with back-off; the others, which found it
      // waiting, joined behind it without asking and do not ask at all.
      yield* advance(20, "1 second")
      for (const name of names.slice(1)) expect(attemptsBy(state.attempts, name)).toBe(0)
      expect(attemptsBy(state.attempts, "w0")).toBeGreaterThan(1)
      expect(state.order).toEqual([])

      yield* release("outside")
      for (let i = 0; i < 50; i++) {
        yield* settle
        yield* TestClock.adjust("1 millis")
      }
      // Each was woken by its predecessor's release: 5 ms of work each, no back-off in between.
      expect(state.order).toEqual(names)
      yield* Effect.forEach(fibers, Fiber.join, { discard: true })
      // Each later caller: refused as it became first (its predecessor held the lock), granted when
      // the predecessor released it.
      for (const name of names.slice(1)) expect(attemptsBy(state.attempts, name)).toBe(2)
    }),
  )

  it.effect("a caller that finds others waiting joins behind them, even when the lock is free as it comes", () =>
    Effect.gen(function* () {
      const { state, take, call } = store()
      yield* take("elsewhere", 600_000)
      const first = yield* started(call("w0", 10))
      // Released elsewhere: nobody here is told; w0 sees it at its next poll.
      state.holder = null
      const late = yield* started(call("late", 10))
      expect(attemptsBy(state.attempts, "late")).toBe(0)
      yield* advance(100, "10 millis")
      yield* Fiber.join(first)
      yield* Fiber.join(late)
      expect(state.order).toEqual(["w0", "late"])
    }),
  )

  it.effect("a caller interrupted while first in line passes its turn to the next, which polls from then on", () =>
    Effect.gen(function* () {
      const { state, take, call } = store()
      // Held by another process until 3 s: no release by this engine will wake anyone.
      yield* take("elsewhere", 3_000)
      const first = yield* started(call("w0", 10))
      const second = yield* started(call("w1", 10))
      yield* Fiber.interrupt(first)
      yield* advance(35, "100 millis")
      // Granted once the lock expired, long before its own deadline (30 s).
      expect(state.order).toEqual(["w1"])
      yield* Fiber.join(second)
    }),
  )

  it.effect("a caller waiting behind others gives up at its deadline with CreditLocked; the others go on", () =>
    Effect.gen(function* () {
      const { state, take, release, call } = store()
      yield* take("outside", 600_000)
      const first = yield* started(call("w0", 10))
      const impatient = yield* started(Effect.either(call("w1", 10, 5_000)))
      const third = yield* started(call("w2", 10))
      yield* TestClock.adjust("5 seconds")
      yield* settle
      const answer = yield* Fiber.join(impatient)
      expect(Either.isLeft(answer) && answer.left._tag).toBe("CreditLocked")
      yield* release("outside")
      for (let i = 0; i < 10; i++) {
        yield* settle
        yield* TestClock.adjust("10 millis")
      }
      yield* Fiber.join(first)
      yield* Fiber.join(third)
      expect(state.order).toEqual(["w0", "w2"])
    }),
  )

  it.effect("a lock that ends without a release by this engine (it expires) is taken by the first in line", () =>
    Effect.gen(function* () {
      const { state, take, call } = store()
      yield* take("elsewhere", 3_000)
      const first = yield* started(call("w0", 10))
      const second = yield* started(call("w1", 10))
      yield* advance(40, "100 millis")
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      expect(state.order).toEqual(["w0", "w1"])
    }),
  )
})
