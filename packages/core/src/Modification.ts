/**
 * Monetary modifications: the request, and what a modification answers. A modification applies
 * all-or-nothing under the holder's lock; its rules (validation, the decision, idempotent replay)
 * are pure functions in `internal/modification.ts`.
 *
 * @module
 */
import { Schema } from "effect"
import { CurrencyCode } from "./Currency.js"
import type { ThresholdCrossed } from "./Events.js"
import type { CreditView } from "./Holder.js"
import { ChangeValue, Reason, Reference } from "./internal/schemas.js"

/** One modification: `{ type: "monetary", changeAmount: { currencyCode, value } }`. */
export const Modification = Schema.Struct({
  type: Schema.Literal("monetary"),
  changeAmount: Schema.Struct({ currencyCode: CurrencyCode, value: ChangeValue }),
}).annotations({ identifier: "Modification" })

/** One modification. */
export type Modification = typeof Modification.Type

/**
 * A modify request: a reason (1–1,000 characters, not only whitespace), one or more
 * modifications, and an optional idempotency `reference` (1–128 characters, no control
 * characters; unique per holder — `ModifyRequest.fields.reference.from` is that rule as a schema).
 */
export const ModifyRequest = Schema.Struct({
  reason: Reason,
  modifications: Schema.Array(Modification).pipe(
    Schema.minItems(1, { message: () => "needs at least one modification" }),
  ),
  reference: Schema.optional(Reference),
}).annotations({ identifier: "ModifyRequest" })

/** A decoded modify request. */
export type ModifyRequest = typeof ModifyRequest.Type

/** A modify request as callers write it. */
export type ModifyRequestInput = typeof ModifyRequest.Encoded

/** The result of `modify`: the holder's credit after it, and the journal entry that records it. */
export interface ModifyResult extends CreditView {
  readonly entryId: string
  /** True when this answers a retry of an already applied request (same reference). */
  readonly replayed: boolean
  /** Thresholds this modification found reached (also published on `events`). */
  readonly events: ReadonlyArray<ThresholdCrossed>
}
