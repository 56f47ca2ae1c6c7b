/**
 * Pessimistic credit locks: who may change a holder's credit, and until when.
 *
 * A lock is live from its grant until `expiresAt` (exclusive), judged against the engine's clock at
 * the moment of each operation; modifications do not extend it. Only the SHA-256 of a key is
 * stored, and hashes are compared in constant time. The rules (grant, key check, release) are
 * pure functions in `internal/lock.ts`.
 *
 * @module
 */
import type { Redacted } from "effect"
import type { CreditView } from "./Holder.js"

/** A granted lock as stored: the key's SHA-256, its validity (epoch ms) and its fencing token. */
export interface LockState {
  readonly keyHash: string
  readonly grantedAt: number
  readonly expiresAt: number
  /** The lock's fencing token (absent on locks granted before tokens were kept). */
  readonly token?: number
  /** For a lock granted under a caller's reference: the reference's SHA-256 and the grant's nonce. */
  readonly reference?: { readonly hash: string; readonly nonce: string }
}

/** Options of `lock`. */
export interface LockOptions {
  /**
   * The caller's reference for this grant (1–128 characters, e.g. the HTTP `Idempotency-Key`):
   * while the lock it granted lives, a retry with the same reference returns the same lock — same
   * key, expiry and token — instead of CreditLocked, so a lost reply does not lock the caller out.
   */
  readonly reference?: string | undefined
}

/**
 * A granted lock: the key to present to `modify`/`unlock`, when it expires, and its fencing
 * token.
 *
 * The token is a per-holder integer that strictly increases with every grant — across takeovers
 * of expired locks, administrative unlocks and restarts, on every adapter, because the holder's
 * document carries the last one issued and commits it with the grant. Journal entries made under
 * the lock record it (`lockToken`). A caller fences its own side effects with it: a store that
 * remembers the highest token it has seen for the holder refuses a write carrying a lower one, so
 * a caller whose lock expired (and was taken over) cannot overwrite the work of its successor.
 */
export interface GrantedLock {
  readonly key: Redacted.Redacted<string>
  readonly expiry: Date
  readonly token: number
}

/** A lock after `extendLock`: its new expiry and its (unchanged) fencing token. */
export interface ExtendedLock {
  readonly expiry: Date
  readonly token: number
}

/** The result of `extendLock`. */
export interface ExtendResult {
  readonly lock: ExtendedLock
}

/** The result of `lock`: the holder's current credit and the lock. */
export interface LockResult {
  readonly credit: CreditView
  readonly lock: GrantedLock
}

/** `tryLock`'s answer when a live lock is in the way: when it expires (a hint for the next try). */
export interface LockRefused {
  readonly granted: false
  readonly expiresAt: Date | undefined
}

/** The result of `tryLock`: the lock granted (as `lock` answers it), or the refusal as a value. */
export type TryLockResult = (LockResult & { readonly granted: true }) | LockRefused
