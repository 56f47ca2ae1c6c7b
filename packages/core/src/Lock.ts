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

/** A granted lock as stored: the key's SHA-256 and its validity, epoch ms. */
export interface LockState {
  readonly keyHash: string
  readonly grantedAt: number
  readonly expiresAt: number
}

/** A granted lock: the key to present to `modify`/`unlock`, and when it expires. */
export interface GrantedLock {
  readonly key: Redacted.Redacted<string>
  readonly expiry: Date
}

/** The result of `lock`: the holder's current credit and the lock. */
export interface LockResult {
  readonly credit: CreditView
  readonly lock: GrantedLock
}
