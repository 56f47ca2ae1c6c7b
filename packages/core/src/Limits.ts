/**
 * Credit limits for a balance group, with Oracle BRM's semantics: a regular limit per resource
 * (currency), temporary limits valid for a period, percentage and fixed thresholds, and an
 * override that stops enforcement.
 *
 * Interpretation choices (BRM publishes the fields, not every rule):
 * - The effective limit at instant t is the highest of the regular limit and every temporary
 *   limit valid at t (`validFrom ≤ t < validTo`); unlimited dominates. A limit L lets credit go
 *   down to −L; a holder without any limit record has minimum credit 0.
 * - `null` (or an absent field) in a request leaves that setting unchanged; `-1` is unlimited.
 *   A `tempCreditLimit` array replaces the resource's temporary limits (`[]` clears them).
 * - Consumption is `used = −credit`; percentage used = (used − floor) / (limit − floor).
 *   Thresholds are armed, not inferred: a threshold is armed while consumption is below it, and
 *   fires once when a change of its currency (a modification, or a limit change) finds
 *   consumption at or above it — whatever moved it there: a debit, a limit change, or a temporary
 *   limit that ended since the last change. It re-arms when a change finds consumption below it.
 *   A threshold newly configured by a limit change starts in the state it is found in (no event).
 * - `dynamicFloor`, `rollUp` and `extension` are stored and returned unchanged: BRM publishes no
 *   semantics for them.
 *
 * The rules themselves are pure functions in `internal/limits.ts`.
 *
 * @module
 */
import { Schema } from "effect"
import type { ThresholdCrossed } from "./Events.js"
import type { HolderRef } from "./Holder.js"

/** A limit in minor units (credit may go down to −limit), or unlimited. */
export type LimitAmount = number | "unlimited"

/** A temporary limit, valid from `validFrom` (inclusive) to `validTo` (exclusive), epoch ms. */
export interface TemporaryLimit {
  readonly limit: LimitAmount
  readonly validFrom: number
  readonly validTo: number
}

/** The limits of one resource (currency) of a holder, as stored. Amounts in minor units. */
export interface ResourceLimits {
  readonly resourceId: number
  readonly currencyCode: string
  /** The regular limit; `null` when never set (it then counts as 0). */
  readonly limit: LimitAmount | null
  readonly floor: number
  /** Percentage thresholds, ascending. */
  readonly thresholds: ReadonlyArray<number>
  /** Fixed thresholds: amounts of consumption (−credit) in minor units, ascending. */
  readonly fixedThresholds: ReadonlyArray<number>
  /** True when the limit is not enforced (BRM `overrideCreditLimit: 1`); thresholds still fire. */
  readonly overrideCreditLimit: boolean
  readonly dynamicFloor: boolean | null
  readonly rollUp: boolean | null
  readonly extension: unknown
  readonly temporary: ReadonlyArray<TemporaryLimit>
  readonly updatedAt: number
  /**
   * The thresholds found reached (consumption at or above them) at the last change of this
   * currency: disarmed until a change finds consumption below them again. Absent in records
   * written before thresholds were armed; they are then taken as reached before the next change.
   */
  readonly reached?: ReachedThresholds
}

/** Thresholds that are reached (so disarmed), by kind. */
export interface ReachedThresholds {
  readonly percentage: ReadonlyArray<number>
  readonly fixed: ReadonlyArray<number>
}

/** A major-unit amount as BRM sends it: a number or a decimal string ("12.00"). */
const Amount = Schema.Union(Schema.Number, Schema.String)

const Unit = Schema.Number.annotations({
  description: "1 seconds, 2 minutes, 3 hours, 4 days, 5 calendar months",
})

/** One entry of BRM's `tempCreditLimit` array. */
const TemporaryLimitRequest = Schema.Struct({
  limit: Amount,
  resourceId: Schema.optional(Schema.NullOr(Schema.Number)),
  validFrom: Schema.optional(Schema.NullOr(Schema.String)),
  validTo: Schema.optional(Schema.NullOr(Schema.String)),
  validFromOffset: Schema.optional(Schema.NullOr(Schema.Number)),
  validFromUnit: Schema.optional(Schema.NullOr(Unit)),
  validToOffset: Schema.optional(Schema.NullOr(Schema.Number)),
  validToUnit: Schema.optional(Schema.NullOr(Unit)),
  extension: Schema.optional(Schema.NullOr(Schema.Unknown)),
}).annotations({ identifier: "TemporaryCreditLimit" })

/**
 * BRM's "create credit limits for a balance group" body. Amounts are in major units (number or
 * decimal string); `resourceId` is the ISO 4217 numeric code (840 = USD).
 */
export const CreditLimitRequest = Schema.Struct({
  resourceId: Schema.Number,
  limit: Schema.optional(Schema.NullOr(Amount)),
  floor: Schema.optional(Schema.NullOr(Amount)),
  thresholds: Schema.optional(Schema.NullOr(Schema.String)),
  fixedThresholds: Schema.optional(Schema.NullOr(Schema.String)),
  overrideCreditLimit: Schema.optional(Schema.NullOr(Schema.Number)),
  dynamicFloor: Schema.optional(Schema.NullOr(Schema.Boolean)),
  rollUp: Schema.optional(Schema.NullOr(Schema.Boolean)),
  extension: Schema.optional(Schema.NullOr(Schema.Unknown)),
  tempCreditLimit: Schema.optional(
    Schema.NullOr(Schema.Array(TemporaryLimitRequest).pipe(Schema.maxItems(100, { message: () => "at most 100" }))),
  ),
}).annotations({ identifier: "CreditLimitRequest" })

/** A decoded credit-limit request. */
export type CreditLimitRequest = typeof CreditLimitRequest.Type

/** A credit-limit request as callers write it (BRM's JSON body). */
export type CreditLimitRequestInput = typeof CreditLimitRequest.Encoded

/** A threshold crossed upward, as journaled (the entry's `at` says when). */
export interface ThresholdRecord {
  readonly currencyCode: string
  readonly kind: "percentage" | "fixed"
  /** The percentage, or the fixed amount of consumption in minor units. */
  readonly threshold: number
  /** Consumption (−credit) after the change, minor units. */
  readonly consumption: number
  readonly effectiveLimit: LimitAmount
}

/** One currency's limits as shown to callers, with what is in force now. */
export interface ResourceLimitsView extends ResourceLimits {
  readonly effectiveLimit: LimitAmount
  /** The minimum credit a debit may leave now; `null` when nothing is enforced. */
  readonly minimumCredit: number | null
}

/** A holder's credit limits, per currency, with the effective limit at `at`. */
export interface CreditLimitsView {
  readonly holder: HolderRef
  readonly balanceGroupId: string | null
  readonly at: Date
  readonly limits: ReadonlyArray<ResourceLimitsView>
  /** Thresholds the change crossed (for `setCreditLimits`; empty for reads). */
  readonly events: ReadonlyArray<ThresholdCrossed>
}
