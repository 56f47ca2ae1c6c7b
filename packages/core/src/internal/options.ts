/**
 * Engine options: their defaults, and the check of each against its documented range (see
 * `CreditEngineOptions`), done once when an engine is built.
 *
 * @internal
 */
import { randomBytes } from "node:crypto"
import { Duration, Either, Option, Redacted } from "effect"
import type { CreditEngineOptions } from "../CreditEngine.js"
import { InvalidRequest } from "../Errors.js"

/** The defaults of `CreditEngineOptions` (published as `DEFAULT_ENGINE_OPTIONS`). */
export const defaults = {
  lockTtl: Duration.seconds(120),
  maxLockLifetime: Duration.minutes(10),
  maxAttempts: 16,
  eventBufferSize: 1024,
  settleTimeout: Duration.seconds(5),
  snapshotCache: { maxHolders: 10_000, maxAge: Duration.millis(50) },
} as const

/** The settings in force, checked. */
export interface Settings {
  readonly ttlMillis: number
  /** The longest a lock may live from its grant, extensions included (≥ ttlMillis). */
  readonly maxLifetimeMillis: number
  /** The secret that derives the keys of locks granted under a reference. */
  readonly lockKeySecret: Uint8Array
  readonly maxAttempts: number
  readonly eventBufferSize: number
  readonly settleMillis: number
  /** The snapshot cache's bounds; null when it is switched off. */
  readonly snapshotCache: { readonly maxHolders: number; readonly maxAgeMillis: number } | null
}

/** A duration setting or argument in milliseconds, checked against [min, max]; InvalidRequest naming it otherwise. */
export const durationSetting = (
  name: string,
  input: unknown,
  fallback: Duration.Duration,
  min: number,
  max: number,
): Either.Either<number, InvalidRequest> => {
  // Duration clamps a negative number of milliseconds to zero; a negative setting is refused instead.
  const decoded =
    typeof input === "number" && !(input >= 0)
      ? Option.none()
      : Duration.decodeUnknown(input === undefined ? fallback : input)
  if (Option.isNone(decoded)) return Either.left(new InvalidRequest({ detail: `${name}: must be a duration` }))
  const millis = Duration.toMillis(decoded.value)
  if (!Number.isFinite(millis) || millis < min || millis > max) {
    return Either.left(
      new InvalidRequest({ detail: `${name}: must be between ${min} ms and ${max} ms, got ${String(millis)} ms` }),
    )
  }
  return Either.right(millis)
}

const integerSetting = (
  name: string,
  input: unknown,
  fallback: number,
  min: number,
  max: number,
): Either.Either<number, InvalidRequest> => {
  const value = input === undefined ? fallback : input
  return typeof value === "number" && Number.isInteger(value) && value >= min && value <= max
    ? Either.right(value)
    : Either.left(new InvalidRequest({ detail: `${name}: must be an integer from ${min} to ${max}` }))
}

const knownOptions = new Set([
  "lockTtl",
  "maxLockLifetime",
  "maxAttempts",
  "eventBufferSize",
  "settleTimeout",
  "lockKeySecret",
  "snapshotCache",
])

/** The snapshot cache's bounds from `snapshotCache` (`false` switches it off). */
const cacheSetting = (input: unknown): Either.Either<Settings["snapshotCache"], InvalidRequest> =>
  Either.gen(function* () {
    if (input === false) return null
    const value = input === undefined ? {} : input
    if (typeof value !== "object" || value === null) {
      return yield* Either.left(new InvalidRequest({ detail: "snapshotCache: must be false or an object" }))
    }
    const { maxHolders, maxAge, ...rest } = value as { maxHolders?: unknown; maxAge?: unknown }
    const unknown = Object.keys(rest)
    if (unknown.length > 0) {
      return yield* Either.left(new InvalidRequest({ detail: `snapshotCache: unknown option ${unknown.join(", ")}` }))
    }
    return {
      maxHolders: yield* integerSetting(
        "snapshotCache.maxHolders",
        maxHolders,
        defaults.snapshotCache.maxHolders,
        1,
        10_000_000,
      ),
      maxAgeMillis: yield* durationSetting("snapshotCache.maxAge", maxAge, defaults.snapshotCache.maxAge, 0, 60_000),
    }
  })

/** The lock-key secret: 32–1024 characters when given, else 256 random bits for this engine. */
const secretSetting = (input: unknown): Either.Either<Uint8Array, InvalidRequest> => {
  if (input === undefined) return Either.right(randomBytes(32))
  const text = Redacted.isRedacted(input) ? Redacted.value(input) : input
  return typeof text === "string" && text.length >= 32 && text.length <= 1024
    ? Either.right(Buffer.from(text, "utf8"))
    : Either.left(new InvalidRequest({ detail: "lockKeySecret: must be a string of 32 to 1024 characters" }))
}

/** Checks engine options against their documented ranges. */
export const validateOptions = (options: CreditEngineOptions): Either.Either<Settings, InvalidRequest> =>
  Either.gen(function* () {
    if (typeof options !== "object" || options === null) {
      return yield* Either.left(new InvalidRequest({ detail: "engine options: must be an object" }))
    }
    const unknown = Object.keys(options).filter((k) => !knownOptions.has(k))
    if (unknown.length > 0) {
      return yield* Either.left(new InvalidRequest({ detail: `engine options: unknown option ${unknown.join(", ")}` }))
    }
    const ttlMillis = yield* durationSetting("lockTtl", options.lockTtl, defaults.lockTtl, 1, 86_400_000)
    // Without an explicit cap, a TTL longer than the default cap is its own cap (no extension).
    const maxLifetimeMillis = yield* durationSetting(
      "maxLockLifetime",
      options.maxLockLifetime,
      Duration.millis(Math.max(ttlMillis, Duration.toMillis(defaults.maxLockLifetime))),
      ttlMillis,
      86_400_000,
    )
    return {
      ttlMillis,
      maxLifetimeMillis,
      lockKeySecret: yield* secretSetting(options.lockKeySecret),
      maxAttempts: yield* integerSetting("maxAttempts", options.maxAttempts, defaults.maxAttempts, 1, 1000),
      eventBufferSize: yield* integerSetting(
        "eventBufferSize",
        options.eventBufferSize,
        defaults.eventBufferSize,
        1,
        1_000_000,
      ),
      settleMillis: yield* durationSetting("settleTimeout", options.settleTimeout, defaults.settleTimeout, 0, 300_000),
      snapshotCache: yield* cacheSetting(options.snapshotCache),
    }
  })
