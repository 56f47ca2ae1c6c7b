/**
 * Events the engine publishes after a change is committed. They are notifications: the journal
 * is the record. A slow subscriber loses the oldest events beyond the engine's buffer.
 *
 * @module
 */
import type { HolderRef } from "./Holder.js"
import type { ThresholdRecord } from "./Limits.js"

/** A lock was granted; `tookOver` is true when it replaced an expired lock. */
export interface LockGranted {
  readonly _tag: "LockGranted"
  readonly holder: HolderRef
  readonly at: Date
  readonly expiresAt: Date
  readonly tookOver: boolean
  /** The lock's fencing token (see `GrantedLock`). */
  readonly token: number
}

/** A live lock's expiry was moved later by `extendLock`. */
export interface LockExtended {
  readonly _tag: "LockExtended"
  readonly holder: HolderRef
  readonly at: Date
  /** The new expiry. */
  readonly expiresAt: Date
  readonly token: number
}

/** An expired lock was replaced by a new one (published just before the matching LockGranted). */
export interface LockExpiredTakenOver {
  readonly _tag: "LockExpiredTakenOver"
  readonly holder: HolderRef
  readonly at: Date
  /** When the replaced lock expired. */
  readonly expiredAt: Date
}

/** The lock holder released its lock. */
export interface LockReleased {
  readonly _tag: "LockReleased"
  readonly holder: HolderRef
  readonly at: Date
}

/** An administrator released a live lock with `unlockCustomer`. */
export interface AdminUnlocked {
  readonly _tag: "AdminUnlocked"
  readonly holder: HolderRef
  readonly at: Date
  readonly entryId: string
}

/** A modification or a limit change moved consumption (−credit) upward across a threshold. */
export interface ThresholdCrossed extends ThresholdRecord {
  readonly _tag: "ThresholdCrossed"
  readonly holder: HolderRef
  readonly at: Date
  /** The journal entry that records the change. */
  readonly entryId: string
}

/** Everything published on `CreditEngine.events`. */
export type CreditEvent =
  | LockGranted
  | LockExtended
  | LockExpiredTakenOver
  | LockReleased
  | AdminUnlocked
  | ThresholdCrossed
