/**
 * The administrative customer unlock: find a customer by id, subscription or order, then release
 * every live lock on every holder of that customer, whoever holds them, journaling each release.
 * Its rules are pure functions in `internal/customerUnlock.ts`.
 *
 * @module
 */
import { Schema } from "effect"
import type { HolderRef } from "./Holder.js"
import { Id, Reference } from "./internal/schemas.js"

/**
 * Which customer to unlock: exactly one of `customerId`, `subscriptionId` (the id of a
 * `contracts` holder) or `orderId` (a journal entry id or a modification's reference).
 */
export const CustomerLookup = Schema.Struct({
  customerId: Schema.optional(Id),
  subscriptionId: Schema.optional(Id),
  orderId: Schema.optional(Reference),
}).pipe(
  Schema.filter((l) => {
    const given = [l.customerId, l.subscriptionId, l.orderId].filter((v) => v !== undefined).length
    return given === 1 || "give exactly one of customerId, subscriptionId or orderId"
  }),
  Schema.annotations({ identifier: "CustomerLookup" }),
)

/** Which customer to unlock, as callers write it. */
export type CustomerLookup = typeof CustomerLookup.Encoded

/** The result of `unlockCustomer`. */
export interface UnlockCustomerResult {
  readonly customerId: string
  /** Every holder of the customer. */
  readonly holders: ReadonlyArray<HolderRef>
  /** The holders whose live lock was released, with the journal entry recording each release. */
  readonly released: ReadonlyArray<{ readonly holder: HolderRef; readonly entryId: string }>
}
