/**
 * The rules of `CustomerUnlock.ts`: the index key a lookup reads, the one customer it resolves
 * to, and the journaled release of each holder's live lock. Pure.
 *
 * @internal
 */
import { Either } from "effect"
import type { CustomerLookup } from "../CustomerUnlock.js"
import { HolderNotFound, IdempotencyConflict } from "../Errors.js"
import type { HolderDocument, HolderRef } from "../Holder.js"
import type { JournalEntry } from "../Journal.js"
import { entryIndexKeys, type IndexKey } from "../Storage.js"
import { isLive } from "./lock.js"
import type { Transaction } from "./plan.js"

/** The index key a lookup reads. */
export const lookupKey = (lookup: typeof CustomerLookup.Type): IndexKey =>
  lookup.customerId !== undefined
    ? { kind: "customer", value: lookup.customerId }
    : lookup.subscriptionId !== undefined
      ? { kind: "subscription", value: lookup.subscriptionId }
      : { kind: "order", value: lookup.orderId ?? "" }

/** Describes a lookup for error details. */
export const describeLookup = (lookup: typeof CustomerLookup.Type): string =>
  lookup.customerId !== undefined
    ? `customer "${lookup.customerId}"`
    : lookup.subscriptionId !== undefined
      ? `subscription "${lookup.subscriptionId}"`
      : `order "${lookup.orderId ?? ""}"`

/**
 * The one customer that verified candidates belong to: none → HolderNotFound; holders of more
 * than one customer → IdempotencyConflict (ambiguous; nothing is unlocked).
 */
export const resolveCustomer = (
  lookup: typeof CustomerLookup.Type,
  holders: ReadonlyArray<HolderRef>,
): Either.Either<string, HolderNotFound | IdempotencyConflict> => {
  const customers = [...new Set(holders.map((h) => h.customerId))]
  const [only] = customers
  if (only === undefined)
    return Either.left(new HolderNotFound({ detail: `no holder found for ${describeLookup(lookup)}` }))
  if (customers.length > 1) {
    return Either.left(
      new IdempotencyConflict({
        detail: `${describeLookup(lookup)} matches holders of ${customers.length} customers; nothing was unlocked`,
      }),
    )
  }
  return Either.right(only)
}

/** What an admin unlock of one holder commits, or `null` when it has no live lock. */
export const decideAdminUnlock = (
  document: HolderDocument,
  now: number,
  entryId: string,
  reason: string,
): { readonly document: HolderDocument; readonly entry: JournalEntry } | null => {
  const lock = document.lock
  if (!isLive(lock, now)) return null
  const seq = document.journalSeq + 1
  return {
    document: { ...document, lock: null, journalSeq: seq },
    entry: {
      id: entryId,
      seq,
      at: now,
      holder: document.ref,
      kind: "admin-unlock",
      reason,
      changes: [],
      releasedLockExpiresAt: lock.expiresAt,
    },
  }
}

/**
 * The admin release of one holder's live lock, journaled under `entryId` (minted once per call,
 * the witness). Answers the entry id, or `null` when there was no live lock (or no holder).
 */
export const adminUnlockTransaction = (
  ref: HolderRef,
  reason: string,
  entryId: string,
): Transaction<string | null, never> => ({
  ref,
  witness: { _tag: "Entry", id: entryId },
  plan: ({ stored }, now) => {
    const decision = stored === null ? null : decideAdminUnlock(stored.document, now, entryId, reason)
    if (decision === null) return Either.right({ result: null, events: [] })
    return Either.right({
      result: entryId,
      write: {
        document: decision.document,
        entries: [decision.entry],
        index: entryIndexKeys([decision.entry]),
        claims: [],
      },
      events: [{ _tag: "AdminUnlocked", holder: ref, at: new Date(now), entryId }],
    })
  },
  landed: ({ sent }) => ({ result: entryId, events: sent.events }),
})
