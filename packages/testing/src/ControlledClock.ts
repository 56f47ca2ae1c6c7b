/**
 * A clock for tests that only moves when it is told to: `advance(ms)` moves it forward, and a
 * sleep (withLock's back-off, an `Effect.sleep` in your code) returns at once with the clock moved
 * to the sleep's end. Lock TTLs, temporary credit limits and withLock's `wait` are then tested
 * without waiting, and no test hangs on a sleep nobody advances past.
 *
 * The engine judges expiry by the Effect `Clock` of the fiber that calls it, so this clock is
 * installed with `Layer.setClock` (see `layer`); the Promise test engine does it for you.
 *
 * @module
 */
import { Clock, Context, Duration, Effect, Layer } from "effect"

/** The instant a controlled clock starts at unless told otherwise: 2030-01-01T00:00:00.000Z. */
export const DEFAULT_START: Date = new Date(Date.UTC(2030, 0, 1))

/** A clock that moves only when told to (or when something sleeps on it). */
export interface ControlledClock {
  /** The Effect `Clock` to install (`Layer.setClock`, `Effect.withClock`). */
  readonly clock: Clock.Clock
  /** The clock's current instant. */
  readonly now: () => Date
  /** Moves the clock forward by `duration` (milliseconds, or text such as `"121 seconds"`); never backward. */
  readonly advance: (duration: Duration.DurationInput) => void
  /** Sets the clock to `instant`, which must not be earlier than the current one. */
  readonly setTime: (instant: Date | number) => void
}

/** The service under which {@link layer} provides the clock, so Effect code can advance it. */
export class ControlledClockService extends Context.Tag("@creditlock/testing/ControlledClock")<
  ControlledClockService,
  ControlledClock
>() {}

const toMillis = (duration: Duration.DurationInput): number => {
  // Duration clamps a negative number to zero; moving the clock back is refused instead.
  if (typeof duration === "number" && !(duration >= 0)) {
    throw new RangeError(`advance: expected a non-negative duration, got ${duration}`)
  }
  const millis = Duration.toMillis(Duration.decode(duration))
  if (!Number.isFinite(millis) || millis < 0) {
    throw new RangeError(`advance: expected a finite, non-negative duration, got ${String(duration)}`)
  }
  return millis
}

/**
 * A controlled clock starting at `startAt` (default {@link DEFAULT_START}). A sleep of `d` yields
 * to the event loop once (so other work runs, as it would while time passes), then moves the
 * clock to at least its start plus `d` and returns. Concurrent sleepers all move the one clock, so
 * a contended `withLock` makes time pass for everyone, as it does in production.
 */
export const make = (startAt: Date | number = DEFAULT_START): ControlledClock => {
  let now = typeof startAt === "number" ? startAt : startAt.getTime()
  if (!Number.isFinite(now)) throw new RangeError("startAt: expected a valid instant")
  const moveTo = (instant: number) => {
    if (instant > now) now = instant
  }
  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => now,
    currentTimeMillis: Effect.sync(() => now),
    unsafeCurrentTimeNanos: () => BigInt(now) * 1_000_000n,
    currentTimeNanos: Effect.sync(() => BigInt(now) * 1_000_000n),
    sleep: (duration) =>
      Effect.async<void>((resume) => {
        const until = now + Duration.toMillis(duration)
        const timer = setImmediate(() => {
          moveTo(until)
          resume(Effect.void)
        })
        return Effect.sync(() => clearImmediate(timer))
      }),
  }
  return {
    clock,
    now: () => new Date(now),
    advance: (duration) => moveTo(now + toMillis(duration)),
    setTime: (instant) => {
      const target = typeof instant === "number" ? instant : instant.getTime()
      if (!Number.isFinite(target) || target < now) {
        throw new RangeError(`setTime: ${String(instant)} is before the clock's current instant`)
      }
      now = target
    },
  }
}

/**
 * Installs a controlled clock for every effect the layer is provided to (`Layer.setClock`) and
 * provides it as {@link ControlledClockService}, to advance it from Effect code.
 */
export const layer = (startAt?: Date | number): Layer.Layer<ControlledClockService> =>
  Layer.unwrapEffect(
    Effect.sync(() => {
      const controlled = make(startAt)
      return Layer.merge(Layer.setClock(controlled.clock), Layer.succeed(ControlledClockService, controlled))
    }),
  )
