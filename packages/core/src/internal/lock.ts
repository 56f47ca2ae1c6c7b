/**
 * The lock rules of `Lock.ts`: grant, key check and release, and the transactions that run them.
 * Every function is pure: `now` and the key hash are parameters.
 *
 * @internal
 */
import { Either, type Redacted } from "effect"
import { CreditLocked, type HolderNotFound, LockKeyMismatch, LockNotHeld } from "../Errors.js"
import type { CreditEvent } from "../Events.js"
import type { HolderDocument, HolderRef } from "../Holder.js"
import type { LockResult, LockState } from "../Lock.js"
import { requireOpen, view } from "./holder.js"
import { sameKeyHash } from "./keys.js"
import type { Transaction } from "./plan.js"

/** Whether `lock` is live at `now` (expiry is exclusive: at `expiresAt` the lock is free). */
export const isLive = (lock: LockState | null, now: number): lock is LockState => lock !== null && now < lock.expiresAt

/** What granting a lock did: the next document, and the expired lock it replaced, if any. */
export interface LockGrant {
  readonly document: HolderDocument
  readonly lock: LockState
  readonly tookOver: LockState | null
}

/**
 * Grants a lock on a holder that has no live lock. A live lock, held by anyone, refuses with
 * CreditLocked saying when it expires (never its key).
 */
export const decideLock = (
  document: HolderDocument,
  now: number,
  keyHash: string,
  ttlMillis: number,
): Either.Either<LockGrant, CreditLocked> => {
  const current = document.lock
  if (isLive(current, now)) {
    const expiresAt = new Date(current.expiresAt)
    return Either.left(new CreditLocked({ detail: `credit is locked until ${expiresAt.toISOString()}`, expiresAt }))
  }
  const lock: LockState = { keyHash, grantedAt: now, expiresAt: now + ttlMillis }
  return Either.right({ document: { ...document, lock }, lock, tookOver: current })
}

/**
 * Checks that `keyHash` is the key of the holder's live lock: no live lock → LockNotHeld; a live
 * lock with another key → LockKeyMismatch.
 */
export const checkKey = (
  document: HolderDocument,
  now: number,
  keyHash: string,
): Either.Either<LockState, LockNotHeld | LockKeyMismatch> => {
  const current = document.lock
  if (!isLive(current, now)) {
    return Either.left(new LockNotHeld({ detail: "no live lock is held on this credit; lock it first" }))
  }
  if (!sameKeyHash(current.keyHash, keyHash)) {
    return Either.left(new LockKeyMismatch({ detail: "the lock key does not match the live lock on this credit" }))
  }
  return Either.right(current)
}

/** What an unlock does: the next document when a lock is released, or nothing to do. */
export type UnlockDecision =
  | { readonly _tag: "Release"; readonly document: HolderDocument; readonly released: LockState }
  | { readonly _tag: "Nothing" }

/**
 * Releases the live lock held with `keyHash`. No live lock → nothing to do (success); a live lock
 * with another key → LockKeyMismatch.
 */
export const decideUnlock = (
  document: HolderDocument,
  now: number,
  keyHash: string,
): Either.Either<UnlockDecision, LockKeyMismatch> => {
  const current = document.lock
  if (!isLive(current, now)) return Either.right({ _tag: "Nothing" })
  if (!sameKeyHash(current.keyHash, keyHash)) {
    return Either.left(new LockKeyMismatch({ detail: "the lock key does not match the live lock on this credit" }))
  }
  return Either.right({ _tag: "Release", document: { ...document, lock: null }, released: current })
}

/**
 * Grants a lock with `key` (minted once per call; `keyHash` is its SHA-256). The witness is the
 * key hash: a lock with it was granted by this call and no other.
 */
export const lockTransaction = (
  ref: HolderRef,
  key: Redacted.Redacted<string>,
  keyHash: string,
  ttlMillis: number,
): Transaction<LockResult, HolderNotFound | CreditLocked> => ({
  ref,
  witness: { _tag: "Lock", keyHash },
  plan: ({ stored }, now) =>
    Either.gen(function* () {
      const { document } = yield* requireOpen(ref, stored)
      const grant = yield* decideLock(document, now, keyHash, ttlMillis)
      const at = new Date(now)
      const expiresAt = new Date(grant.lock.expiresAt)
      const events: Array<CreditEvent> = []
      if (grant.tookOver !== null) {
        events.push({ _tag: "LockExpiredTakenOver", holder: ref, at, expiredAt: new Date(grant.tookOver.expiresAt) })
      }
      events.push({ _tag: "LockGranted", holder: ref, at, expiresAt, tookOver: grant.tookOver !== null })
      return {
        result: { credit: view(grant.document), lock: { key, expiry: expiresAt } },
        write: { document: grant.document, entries: [], index: [], claims: [] },
        events,
      }
    }),
  landed: ({ stored, sent }) => {
    // The witness guarantees the stored lock is this call's; its times are the landed attempt's.
    const granted = stored.document.lock
    if (granted === null) return { result: sent.result, events: [] }
    const expiresAt = new Date(granted.expiresAt)
    const tookOver = sent.events.some((e) => e._tag === "LockExpiredTakenOver")
    return {
      result: { credit: view(stored.document), lock: { key, expiry: expiresAt } },
      events: [{ _tag: "LockGranted", holder: ref, at: new Date(granted.grantedAt), expiresAt, tookOver }],
    }
  },
})

/**
 * Releases the live lock held with `keyHash`. The witness is the effect itself: no live lock with
 * this key hash on the holder (whoever released it, it is released).
 */
export const unlockTransaction = (
  ref: HolderRef,
  keyHash: string,
): Transaction<void, HolderNotFound | LockKeyMismatch> => ({
  ref,
  witness: { _tag: "Released", keyHash },
  plan: ({ stored }, now) =>
    Either.gen(function* () {
      const { document } = yield* requireOpen(ref, stored)
      const decision = yield* decideUnlock(document, now, keyHash)
      if (decision._tag === "Nothing") return { result: undefined, events: [] }
      return {
        result: undefined,
        write: { document: decision.document, entries: [], index: [], claims: [] },
        events: [{ _tag: "LockReleased", holder: ref, at: new Date(now) }],
      }
    }),
  // The lock with this key is gone; announce a release only when no lock is left (an expired lock
  // still in place, or another one, was not released by this call).
  landed: ({ stored, sent }) => ({ result: undefined, events: stored.document.lock === null ? sent.events : [] }),
})
