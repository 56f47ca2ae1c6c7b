/**
 * `withLock`: acquire a holder's lock (waiting out contention), run the caller's work with it, and
 * release it whatever happens — then say whether the lock held all the way.
 *
 * @internal
 */
import { Clock, Duration, Effect, Either, Exit, Random, Redacted } from "effect"
import type { WithLockOptions } from "../CreditEngine.js"
import { type CreditLocked, InvalidRequest, LockExpired, LockNotHeld } from "../Errors.js"
import type { HolderRef } from "../Holder.js"
import type { LockResult } from "../Lock.js"
import { holderKey } from "../Storage.js"
import type { UnlockOutcome } from "./lock.js"
import * as metrics from "./metrics.js"
import { record } from "./metrics.js"
import { durationSetting } from "./options.js"

/** How long `withLock` waits for a contended lock by default. */
export const DEFAULT_LOCK_WAIT = Duration.seconds(30)

/** The first wait after a refusal, doubled per refusal up to {@link MAX_WAIT_MILLIS}, jittered. */
const FIRST_WAIT_MILLIS = 20
const MAX_WAIT_MILLIS = 1_000

/** What `withLock` needs from the engine. */
export interface LockOps<EL, EU> {
  readonly lock: (ref: HolderRef) => Effect.Effect<LockResult, EL>
  readonly release: (ref: HolderRef, key: string) => Effect.Effect<UnlockOutcome, EU>
  /** This engine's waiters; the engine tells it of every release it commits (`released`). */
  readonly queue: LockQueue
}

/** One `withLock` call waiting for a holder's lock. */
interface Waiter {
  /** Set while it waits: ends the wait. */
  resume: (() => void) | null
  /** Woken while it was not waiting: its next wait ends at once. */
  woken: boolean
}

const wake = (waiter: Waiter) => {
  const resume = waiter.resume
  if (resume === null) waiter.woken = true
  else {
    waiter.resume = null
    resume()
  }
}

/**
 * An engine's `withLock` calls waiting for a holder's lock, per holder in the order they were
 * first refused. Only the first (the head) asks the store again — after its back-off, or at once
 * when this engine releases the holder's lock; the others wait for their turn. So contenders in one
 * process take the lock in turn instead of racing each other to the store (where the one that just
 * released would usually win again), and a hot holder is polled by one caller per process.
 * Callers in other processes (or other engines) are not queued here: the head competes with them
 * through the store, with back-off, as every caller did before.
 */
export class LockQueue {
  private readonly queues = new Map<string, Array<Waiter>>()

  /** Appends a waiter for the holder `key`. */
  join(key: string): Waiter {
    const waiter: Waiter = { resume: null, woken: false }
    const queue = this.queues.get(key)
    if (queue === undefined) this.queues.set(key, [waiter])
    else queue.push(waiter)
    return waiter
  }

  /**
   * The holder key of `ref` when callers already wait for that holder (null otherwise, and for
   * anything not shaped like a ref: it is validated by its first attempt).
   */
  queuedKey(ref: unknown): string | null {
    if (this.queues.size === 0 || typeof ref !== "object" || ref === null) return null
    const { customerId, holderType, holderId } = ref as Record<string, unknown>
    if (typeof customerId !== "string" || typeof holderType !== "string" || typeof holderId !== "string") return null
    const key = `${customerId}/${holderType}/${holderId}`
    return this.queues.has(key) ? key : null
  }

  /** Whether `waiter` is first in line for the holder `key`. */
  isHead(key: string, waiter: Waiter): boolean {
    return this.queues.get(key)?.[0] === waiter
  }

  /**
   * Removes `waiter` (granted, given up or interrupted). When it was first in line the next one is
   * woken: it asks the store at once (a lock the leaver was granted is refused cheaply) and then
   * waits as the head does, so a lock that ends without a release by this engine is still seen.
   */
  leave(key: string, waiter: Waiter): void {
    const queue = this.queues.get(key)
    if (queue === undefined) return
    const at = queue.indexOf(waiter)
    if (at === -1) return
    queue.splice(at, 1)
    if (queue.length === 0) this.queues.delete(key)
    else if (at === 0) wake(queue[0] as Waiter)
  }

  /** This engine released the holder's lock: the head asks for it at once. */
  released(key: string): void {
    const head = this.queues.get(key)?.[0]
    if (head !== undefined) wake(head)
  }

  /** Waits until `waiter` is woken or `millis` have passed (`Clock` time). */
  wait(waiter: Waiter, millis: number): Effect.Effect<void> {
    const woken = Effect.async<void>((resume) => {
      if (waiter.woken) {
        waiter.woken = false
        resume(Effect.void)
        return
      }
      waiter.resume = () => resume(Effect.void)
      return Effect.sync(() => {
        waiter.resume = null
      })
    })
    return Effect.asVoid(Effect.timeoutOption(woken, Duration.millis(Math.max(1, millis))))
  }
}

const knownOptions = new Set(["wait"])

/**
 * Acquires with retry on CreditLocked, in turn with the engine's other callers waiting for the
 * holder (`LockQueue`): the first in line retries after a jittered exponential back-off (20 ms
 * doubling to 1 s) that never sleeps past the refusing lock's expiry (it is free then) nor past the
 * wait deadline, or at once when the engine releases the lock; the others wait for their turn. At
 * the deadline a last try is made, and its CreditLocked is the answer. Then runs `use`, and releases in every case
 * (success, failure, interruption). After a successful `use` the release tells whether the lock
 * held throughout: it expired meanwhile (and perhaps was taken over) → LockExpired; someone else
 * released it (an administrator) → LockNotHeld. A release that fails in the storage is logged and
 * does not hide `use`'s own result: the lock then ends with its TTL.
 */
export const withLock =
  <EL, EU>(ops: LockOps<EL, EU>) =>
  <A, E, R>(
    ref: HolderRef,
    use: (lock: LockResult) => Effect.Effect<A, E, R>,
    options: WithLockOptions = {},
  ): Effect.Effect<A, E | EL | InvalidRequest | CreditLocked | LockExpired | LockNotHeld, R> =>
    Effect.gen(function* () {
      if (typeof options !== "object" || options === null) {
        return yield* new InvalidRequest({ detail: "withLock options: must be an object" })
      }
      const unknown = Object.keys(options).filter((k) => !knownOptions.has(k))
      if (unknown.length > 0) {
        return yield* new InvalidRequest({ detail: `withLock options: unknown option ${unknown.join(", ")}` })
      }
      const waitMillis = yield* durationSetting("wait", options.wait, DEFAULT_LOCK_WAIT, 0, 86_400_000)
      const deadline = (yield* Clock.currentTimeMillis) + waitMillis

      const started = deadline - waitMillis
      const waited = (outcome: "granted" | "refused", now: number) =>
        record(metrics.lockWait(outcome), Math.max(0, now - started) / 1000)

      // This call's place in the engine's queue: taken on its first refusal (the ref is valid then),
      // or on arrival when others already wait for the holder (it does not barge in ahead of them).
      let waiting: { readonly key: string; readonly waiter: Waiter } | null = null
      const queued = ops.queue.queuedKey(ref)
      if (queued !== null && waitMillis > 0) waiting = { key: queued, waiter: ops.queue.join(queued) }
      const acquire = Effect.gen(function* () {
        // Refusals since this call last became first in line: its back-off.
        let refusal = 0
        for (;;) {
          if (waiting !== null && !ops.queue.isHead(waiting.key, waiting.waiter)) {
            // Its turn comes when it is woken as first in line; or at the deadline, one last try.
            // (Waited in slices of at most MAX_WAIT_MILLIS: a clock that jumps to a sleep's end moves
            // no further than a back-off would.)
            const now = yield* Clock.currentTimeMillis
            if (now < deadline) {
              yield* ops.queue.wait(waiting.waiter, Math.min(deadline - now, MAX_WAIT_MILLIS))
              refusal = 0
              continue
            }
          }
          const attempt = yield* Effect.either(ops.lock(ref))
          if (Either.isRight(attempt)) {
            waited("granted", yield* Clock.currentTimeMillis)
            return attempt.right
          }
          const error = attempt.left
          const isLocked = (e: unknown): e is CreditLocked =>
            typeof e === "object" && e !== null && "_tag" in e && e._tag === "CreditLocked"
          if (!isLocked(error)) return yield* Effect.fail(error)
          const now = yield* Clock.currentTimeMillis
          if (now >= deadline) {
            waited("refused", now)
            return yield* Effect.fail(error)
          }
          if (waiting === null) waiting = { key: holderKey(ref), waiter: ops.queue.join(holderKey(ref)) }
          if (!ops.queue.isHead(waiting.key, waiting.waiter)) continue
          // First in line: back off, never past the refusing lock's expiry nor the deadline.
          const cap = Math.min(FIRST_WAIT_MILLIS * 2 ** refusal++, MAX_WAIT_MILLIS)
          const jittered = yield* Random.nextIntBetween(Math.ceil(cap / 2), cap + 1)
          const untilFree = error.expiresAt === undefined ? jittered : Math.max(1, error.expiresAt.getTime() - now)
          yield* ops.queue.wait(waiting.waiter, Math.min(jittered, untilFree, deadline - now))
        }
      }).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            if (waiting !== null) ops.queue.leave(waiting.key, waiting.waiter)
          }),
        ),
      )

      return yield* Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          const granted = yield* restore(acquire)
          const key = Redacted.value(granted.lock.key)
          const exit = yield* Effect.exit(restore(use(granted)))
          const released = yield* Effect.either(ops.release(ref, key))
          if (Either.isLeft(released)) {
            const error = released.left as { readonly _tag?: unknown }
            // A live lock with another key: this one expired and was taken over.
            if (Exit.isSuccess(exit) && error._tag === "LockKeyMismatch") {
              return yield* new LockExpired({
                detail: `the lock expired while the work under it ran (at ${granted.lock.expiry.toISOString()} or later) and was taken over`,
                expiredAt: granted.lock.expiry,
              })
            }
            yield* Effect.logWarning("withLock could not release the lock; it ends with its TTL", released.left)
            return yield* exit
          }
          if (Exit.isFailure(exit) || released.right.released) return yield* exit
          const { last } = released.right
          if (last !== null) {
            const expiredAt = new Date(last.expiresAt)
            return yield* new LockExpired({
              detail: `the lock expired at ${expiredAt.toISOString()}, while the work under it ran`,
              expiredAt,
            })
          }
          return yield* new LockNotHeld({
            detail: "the lock was released by someone else (an administrative unlock) while the work under it ran",
          })
        }),
      )
    })
