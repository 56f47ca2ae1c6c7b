/**
 * Credit holders: how they are named, what is stored for each, and how their credit is shown.
 *
 * @module
 */
import { Schema } from "effect"
import { CurrencyCode } from "./Currency.js"
import { Id } from "./internal/schemas.js"
import type { ResourceLimits } from "./Limits.js"
import type { LockState } from "./Lock.js"

/** The kinds of holder, in their URL path form. */
export const HolderType = Schema.Literal("contracts", "customers")

/** The kinds of holder, in their URL path form. */
export type HolderType = typeof HolderType.Type

/**
 * Names one credit holder: a customer's contract (subscription) or the customer itself. Each id
 * is 1–128 characters (code points) with no `/`, whitespace or control characters (BRM ids such
 * as `0.0.0.1+-balance_group+82896` are valid); `HolderRef.fields.customerId` is that rule as a
 * schema, for callers that check ids of their own.
 */
export const HolderRef = Schema.Struct({
  customerId: Id,
  holderType: HolderType,
  holderId: Id,
}).annotations({ identifier: "HolderRef" })

/** Names one credit holder. */
export interface HolderRef {
  readonly customerId: string
  readonly holderType: HolderType
  readonly holderId: string
}

/** The stored balance of one currency: `value` in the currency's minor unit, `updatedAt` in epoch ms. */
export interface Balance {
  readonly currencyCode: string
  readonly value: number
  readonly updatedAt: number
}

/**
 * Everything stored for one holder, as one document. Adapters persist it whole (with
 * `encodeDocument` from `@creditlock/core/storage`); only the engine interprets it.
 */
export interface HolderDocument {
  readonly ref: HolderRef
  /**
   * The balance-group alias the holder claimed (unique among all holders), or `null` when it was
   * opened without one: there is no implicit alias, so no holder can squat another's.
   */
  readonly balanceGroupId: string | null
  /** When the holder was opened, epoch ms. */
  readonly openedAt: number
  /** One balance per currency, in the order currencies first appeared. */
  readonly balances: ReadonlyArray<Balance>
  /** The last lock granted, live or not; liveness is judged against the clock at each operation. */
  readonly lock: LockState | null
  /**
   * The fencing token of the last lock granted (absent: none yet, 0). Kept on the document, not on
   * the lock, so it survives releases and takeovers; the next grant takes this + 1.
   */
  readonly lastLockToken?: number
  /** The `seq` of the last journal entry (entries are numbered from 1). */
  readonly journalSeq: number
  /** Credit limits per currency; absent until limits are first set. */
  readonly limits?: ReadonlyArray<ResourceLimits>
}

/** One credit as shown to callers: `{ type: "monetary", amount: { currencyCode, value }, updatedAt }`. */
export const Credit = Schema.Struct({
  type: Schema.Literal("monetary"),
  amount: Schema.Struct({ currencyCode: CurrencyCode, value: Schema.Number }),
  updatedAt: Schema.DateFromSelf,
}).annotations({ identifier: "Credit" })

/** One credit as shown to callers. */
export type Credit = typeof Credit.Type

/** A holder and its current credit, as returned by reads, locks and modifications. */
export interface CreditView {
  readonly holder: HolderRef
  /** The holder's balance-group alias, `null` when it has none. */
  readonly balanceGroupId: string | null
  readonly current: { readonly credit: ReadonlyArray<Credit> }
}

/** Options for opening a holder. */
export const OpenHolderOptions = Schema.Struct({
  balanceGroupId: Schema.optional(Id),
}).annotations({ identifier: "OpenHolderOptions" })

/** Options for opening a holder. */
export interface OpenHolderOptions {
  /**
   * The balance-group alias to claim for the holder: unique among all holders, first claim wins.
   * Without one the holder has no alias (there is no implicit one) and the balance-group calls
   * (`setCreditLimits`, `getCreditLimits`) cannot find it until one is attached by opening it
   * again with one.
   */
  readonly balanceGroupId?: string | undefined
}

/** The result of opening a holder. */
export interface OpenResult {
  readonly holder: HolderRef
  /** The holder's balance-group alias, `null` when it has none. */
  readonly balanceGroupId: string | null
  /** False when the holder was open already (opening is idempotent). */
  readonly created: boolean
}
