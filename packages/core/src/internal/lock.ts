/**
 * The lock rules of `Lock.ts`: grant, key check and release, and the transactions that run them.
 * Every function is pure: `now` and the key hash are parameters.
 *
 * @internal
 */
import { Either, Redacted } from "effect"
import { CreditLocked, type HolderNotFound, LockExpired, LockKeyMismatch, LockNotHeld } from "../Errors.js"
import type { CreditEvent } from "../Events.js"
import type { HolderDocument, HolderRef } from "../Holder.js"
import type { ExtendResult, LockResult, LockState } from "../Lock.js"
import { requireOpen, view } from "./holder.js"
import { hashLockKey, sameKeyHash } from "./keys.js"
import type { Transaction } from "./plan.js"
import { refusal } from "./refusal.js"

/** Whether `lock` is live at `now` (expiry is exclusive: at `expiresAt` the lock is free). */
export const isLive = (lock: LockState | null, now: number): lock is LockState => lock !== null && now < lock.expiresAt

/** What granting a lock did: the next document, and the expired lock it replaced, if any. */
export interface LockGrant {
  readonly document: HolderDocument
  readonly lock: LockState
  readonly tookOver: LockState | null
}

/** CreditLocked for a live lock, saying when it expires (never its key). */
/** The refusal of a lock attempt that `current` (a live lock) is in the way of. */
export const locked = (current: LockState) => {
  const expiresAt = new Date(current.expiresAt)
  return refusal(
    () => new CreditLocked({ detail: `credit is locked until ${expiresAt.toISOString()}`, expiresAt }, true),
  )
}

/** The fencing token of the holder's last grant (0: none yet). */
export const lastLockToken = (document: HolderDocument): number => document.lastLockToken ?? 0

/** The lock that refuses a new grant at `now`: the holder's live lock, held by anyone; null when there is none. */
export const refusingLock = (document: HolderDocument, now: number): LockState | null =>
  isLive(document.lock, now) ? document.lock : null

/**
 * Grants a lock on a holder that has no live lock, with the next fencing token. A live lock, held
 * by anyone, refuses with CreditLocked saying when it expires (never its key). The key is asked
 * for (`key`) only when the lock is granted.
 */
export const decideLock = (
  document: HolderDocument,
  now: number,
  key: () => { readonly keyHash: string; readonly reference?: LockState["reference"] | undefined },
  ttlMillis: number,
): Either.Either<LockGrant, CreditLocked> => {
  const refusing = refusingLock(document, now)
  if (refusing !== null) return Either.left(locked(refusing))
  const current = document.lock
  const { keyHash, reference } = key()
  const token = lastLockToken(document) + 1
  const lock: LockState = {
    keyHash,
    grantedAt: now,
    expiresAt: now + ttlMillis,
    token,
    ...(reference === undefined ? {} : { reference }),
  }
  return Either.right({ document: { ...document, lock, lastLockToken: token }, lock, tookOver: current })
}

/** LockKeyMismatch for a live lock held with another key, saying when it expires. */
const mismatch = (current: LockState) => {
  const expiresAt = new Date(current.expiresAt)
  return refusal(
    () =>
      new LockKeyMismatch(
        {
          detail: `the lock key does not match the live lock on this credit, which expires at ${expiresAt.toISOString()}`,
          expiresAt,
        },
        true,
      ),
  )
}

/**
 * Checks that `keyHash` is the key of the holder's live lock: a live lock with another key →
 * LockKeyMismatch; the key of the last lock, which has expired → LockExpired; otherwise (never
 * locked, released, or an older key) → LockNotHeld.
 */
export const checkKey = (
  document: HolderDocument,
  now: number,
  keyHash: string,
): Either.Either<LockState, LockNotHeld | LockKeyMismatch | LockExpired> => {
  const current = document.lock
  if (isLive(current, now)) {
    return sameKeyHash(current.keyHash, keyHash) ? Either.right(current) : Either.left(mismatch(current))
  }
  // Not live: `isLive` narrowed `current` away, so the last lock is read again.
  const last: LockState | null = document.lock
  if (last !== null && sameKeyHash(last.keyHash, keyHash)) {
    const expiredAt = new Date(last.expiresAt)
    return Either.left(
      refusal(
        () =>
          new LockExpired(
            {
              detail: `the lock this key was granted expired at ${expiredAt.toISOString()}; lock the credit again`,
              expiredAt,
            },
            true,
          ),
      ),
    )
  }
  return Either.left(
    refusal(() => new LockNotHeld({ detail: "no live lock is held on this credit; lock it first" }, true)),
  )
}

/**
 * The expiry an extension to `until` gives `lock`: `until`, but never past the lock's grant plus
 * `capMillis` (its total lifetime), and never earlier than it already expires.
 */
export const extendedExpiry = (lock: LockState, until: number, capMillis: number): number =>
  Math.max(lock.expiresAt, Math.min(until, lock.grantedAt + capMillis))

/** What an extension does: the lock as extended, and the next document when its expiry moved. */
export interface ExtendDecision {
  readonly lock: LockState
  readonly document: HolderDocument | null
}

/**
 * Extends the live lock held with `keyHash` to `until` (capped by {@link extendedExpiry}). Only a
 * live lock with this key can be extended: an expired one is never revived (LockExpired), another
 * live lock → LockKeyMismatch, none → LockNotHeld. An expiry that would not move needs no write.
 */
export const decideExtend = (
  document: HolderDocument,
  now: number,
  keyHash: string,
  until: number,
  capMillis: number,
): Either.Either<ExtendDecision, LockNotHeld | LockKeyMismatch | LockExpired> =>
  Either.map(checkKey(document, now, keyHash), (current) => {
    const expiresAt = extendedExpiry(current, until, capMillis)
    if (expiresAt === current.expiresAt) return { lock: current, document: null }
    const lock: LockState = { ...current, expiresAt }
    return { lock, document: { ...document, lock } }
  })

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
  if (!sameKeyHash(current.keyHash, keyHash)) return Either.left(mismatch(current))
  return Either.right({ _tag: "Release", document: { ...document, lock: null }, released: current })
}

/**
 * A lock call's reference: its SHA-256 and the nonce minted for this call, stored with a new grant,
 * and how to derive the key of the grant a nonce belongs to.
 */
export interface LockReference {
  readonly hash: string
  readonly keyFor: (nonce: string) => string
}

/** A lock key minted for a grant: the key, its SHA-256, and (under a reference) the nonce it derives from. */
export interface MintedKey {
  readonly key: Redacted.Redacted<string>
  readonly keyHash: string
  readonly nonce?: string
}

/**
 * Grants a lock with the key `mint` makes — called once per call, when a grant is first planned
 * (a refusal mints nothing), and kept for every later attempt. The witness is the key hash: a
 * lock with it was granted by this call and no other. With a reference, a live lock granted
 * under the same reference is answered again (same key, expiry and token, no write) when its key
 * derives from the reference and its nonce, i.e. with the same secret; otherwise CreditLocked as
 * for any live lock.
 */
export const lockTransaction = (
  ref: HolderRef,
  ttlMillis: number,
  mint: () => MintedKey,
  reference?: LockReference,
): Transaction<LockResult, HolderNotFound | CreditLocked> => {
  let minted: MintedKey | undefined
  const minting = (): MintedKey => {
    if (minted === undefined) minted = mint()
    return minted
  }
  return {
    ref,
    get witness() {
      return { _tag: "Lock", keyHash: minting().keyHash } as const
    },
    plan: ({ stored }, now) =>
      Either.gen(function* () {
        const { document } = yield* requireOpen(ref, stored)
        const current = document.lock
        if (reference !== undefined && isLive(current, now) && current.reference?.hash === reference.hash) {
          const again = reference.keyFor(current.reference.nonce)
          if (!sameKeyHash(hashLockKey(again), current.keyHash)) return yield* Either.left(locked(current))
          return {
            result: {
              credit: view(document),
              lock: { key: Redacted.make(again), expiry: new Date(current.expiresAt), token: current.token ?? 0 },
            },
            events: [],
          }
        }
        const grant = yield* decideLock(
          document,
          now,
          () => {
            const { keyHash, nonce } = minting()
            return {
              keyHash,
              reference: reference === undefined || nonce === undefined ? undefined : { hash: reference.hash, nonce },
            }
          },
          ttlMillis,
        )
        const { key } = minting()
        const at = new Date(now)
        const expiresAt = new Date(grant.lock.expiresAt)
        const events: Array<CreditEvent> = []
        if (grant.tookOver !== null) {
          events.push({ _tag: "LockExpiredTakenOver", holder: ref, at, expiredAt: new Date(grant.tookOver.expiresAt) })
        }
        events.push({
          _tag: "LockGranted",
          holder: ref,
          at,
          expiresAt,
          tookOver: grant.tookOver !== null,
          token: grant.lock.token ?? 0,
        })
        return {
          result: { credit: view(grant.document), lock: { key, expiry: expiresAt, token: grant.lock.token ?? 0 } },
          write: { document: grant.document, entries: [], index: [], claims: [] },
          events,
        }
      }),
    landed: ({ stored, sent }) => {
      // The witness guarantees the stored lock is this call's; its times are the landed attempt's.
      const granted = stored.document.lock
      if (granted === null) return { result: sent.result, events: [] }
      const expiresAt = new Date(granted.expiresAt)
      const token = granted.token ?? 0
      const tookOver = sent.events.some((e) => e._tag === "LockExpiredTakenOver")
      return {
        result: { credit: view(stored.document), lock: { key: minting().key, expiry: expiresAt, token } },
        events: [{ _tag: "LockGranted", holder: ref, at: new Date(granted.grantedAt), expiresAt, tookOver, token }],
      }
    },
  }
}

/**
 * What an unlock found: whether this call released a live lock, and otherwise the holder's last
 * lock (expired, or null when none is left), so `withLock` can tell an expiry from a release by
 * someone else.
 */
export interface UnlockOutcome {
  readonly released: boolean
  readonly last: LockState | null
}

/**
 * Releases the live lock held with `keyHash`. The witness is the effect itself: no live lock with
 * this key hash on the holder (whoever released it, it is released).
 */
export const unlockTransaction = (
  ref: HolderRef,
  keyHash: string,
): Transaction<UnlockOutcome, HolderNotFound | LockKeyMismatch> => ({
  ref,
  witness: { _tag: "Released", keyHash },
  plan: ({ stored }, now) =>
    Either.gen(function* () {
      const { document } = yield* requireOpen(ref, stored)
      const decision = yield* decideUnlock(document, now, keyHash)
      if (decision._tag === "Nothing") return { result: { released: false, last: document.lock }, events: [] }
      return {
        result: { released: true, last: decision.released },
        write: { document: decision.document, entries: [], index: [], claims: [] },
        events: [{ _tag: "LockReleased", holder: ref, at: new Date(now) }],
      }
    }),
  // The lock with this key is gone; announce a release only when no lock is left (an expired lock
  // still in place, or another one, was not released by this call).
  landed: ({ stored, sent }) => ({ result: sent.result, events: stored.document.lock === null ? sent.events : [] }),
})

/**
 * Extends the live lock held with `keyHash` until `until` (the call's time plus the requested TTL,
 * fixed once per call), within the lock's total lifetime `capMillis`. The witness is the effect:
 * the lock with this key hash expires no earlier than that.
 */
export const extendTransaction = (
  ref: HolderRef,
  keyHash: string,
  until: number,
  capMillis: number,
): Transaction<ExtendResult, HolderNotFound | LockNotHeld | LockKeyMismatch | LockExpired> => {
  const answer = (lock: LockState): ExtendResult => ({
    lock: { expiry: new Date(lock.expiresAt), token: lock.token ?? 0 },
  })
  return {
    ref,
    witness: { _tag: "Extended", keyHash, until, capMillis },
    plan: ({ stored }, now) =>
      Either.gen(function* () {
        const { document } = yield* requireOpen(ref, stored)
        const decision = yield* decideExtend(document, now, keyHash, until, capMillis)
        if (decision.document === null) return { result: answer(decision.lock), events: [] }
        const event: CreditEvent = {
          _tag: "LockExtended",
          holder: ref,
          at: new Date(now),
          expiresAt: new Date(decision.lock.expiresAt),
          token: decision.lock.token ?? 0,
        }
        return {
          result: answer(decision.lock),
          write: { document: decision.document, entries: [], index: [], claims: [] },
          events: [event],
        }
      }),
    // The witness guarantees the stored lock is this key's, extended at least as far as asked.
    landed: ({ stored, sent }) => {
      const lock = stored.document.lock
      return lock === null
        ? { result: sent.result, events: sent.events }
        : { result: answer(lock), events: sent.events }
    },
  }
}
