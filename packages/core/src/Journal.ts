/**
 * The journal: an append-only record of every state change of a holder, committed atomically with
 * the state it describes. Its invariant — for each currency the deltas sum to the current value —
 * is what `CreditEngine.verify` checks (the check itself is `internal/journal.ts`).
 *
 * @module
 */
import type { Balance, HolderRef } from "./Holder.js"
import type { ResourceLimits, ThresholdRecord } from "./Limits.js"

/** What kind of change an entry records. */
export type JournalKind = "opened" | "balance-group" | "modification" | "limits" | "admin-unlock"

/** The change of one currency's credit: `after = before + delta`. */
export interface Change {
  readonly currencyCode: string
  readonly delta: number
  readonly before: number
  readonly after: number
}

/** One immutable journal entry. `at` is epoch ms; `seq` numbers a holder's entries from 1. */
export interface JournalEntry {
  /** Globally unique (random UUID). */
  readonly id: string
  readonly seq: number
  readonly at: number
  readonly holder: HolderRef
  readonly kind: JournalKind
  readonly reason?: string
  /** The caller's idempotency reference, unique per holder. */
  readonly reference?: string
  /** SHA-256 of the canonical request, to tell a replay from a conflicting reuse of `reference`. */
  readonly fingerprint?: string
  readonly changes: ReadonlyArray<Change>
  /** The holder's balances after this entry, so a replay can return the original result. */
  readonly balances?: ReadonlyArray<Balance>
  /** For limit changes: the currency's limits before (null when first set) and after. */
  readonly limits?: { readonly before: ResourceLimits | null; readonly after: ResourceLimits }
  /** Thresholds this change crossed upward (modifications and limit changes). */
  readonly thresholds?: ReadonlyArray<ThresholdRecord>
  /** For `balance-group` entries: the alias attached to the holder. */
  readonly balanceGroupId?: string
  /** For modifications: the fencing token of the lock they were made under (see `GrantedLock`). */
  readonly lockToken?: number
  /** For admin unlocks: when the released lock would have expired, epoch ms. */
  readonly releasedLockExpiresAt?: number
}

/** A page of journal entries in `seq` order; `next` is the cursor for the following page, if any. */
export interface JournalPage {
  readonly entries: ReadonlyArray<JournalEntry>
  readonly next: number | null
}

/** What `verify` found for one currency. */
export interface CurrencyCheck {
  readonly currencyCode: string
  readonly value: number
  readonly journalSum: number
  readonly ok: boolean
}

/** The result of checking a holder's journal against its state. */
export interface VerifyReport {
  readonly holder: HolderRef
  /** True when every currency balances and the entries are numbered 1..n without gaps. */
  readonly ok: boolean
  readonly entries: number
  readonly sequenceOk: boolean
  readonly currencies: ReadonlyArray<CurrencyCheck>
}
