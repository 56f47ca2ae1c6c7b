/**
 * What one attempt of an operation decides, as plain data: the result it answers, the write that
 * makes the result true, the events to publish once the write is committed, and the witness that
 * proves the write landed when its commit's reply was lost.
 *
 * Every operation of the engine is a {@link Transaction}: a pure planner run against a snapshot of
 * one holder, plus the way to answer when a lost commit is proven to have landed. The rules of each
 * concept (`holder.ts`, `lock.ts`, `modification.ts`, `limits.ts`, `customerUnlock.ts` here) build
 * them; one transaction core (`transact.ts`) runs them: load → plan → commit → settle → back-off →
 * publish.
 *
 * @internal
 */
import type { Either } from "effect"
import type { CreditEvent } from "../Events.js"
import type { HolderDocument, HolderRef } from "../Holder.js"
import type { JournalEntry } from "../Journal.js"
import type { IndexKey, StoredHolder } from "../Storage.js"

/**
 * What proves that a write landed, read back from the store after its commit's reply was lost.
 * A witness is minted once per call (every attempt of one call writes the same one) and is unique
 * to that call, so no other write can pass for it:
 * - `Entry`: the holder's journal holds an entry with this id (journaled writes);
 * - `Lock`: the holder's lock has this key hash (a granted lock; keys are 128-bit random);
 * - `Released`: the holder has no live lock with this key hash (an unlock: its effect holds);
 * - `Extended`: the holder's lock has this key hash and expires no earlier than `until`, or than
 *   its grant plus `capMillis` when that comes first (an extension: its effect holds).
 */
export type Witness =
  | { readonly _tag: "Entry"; readonly id: string }
  | { readonly _tag: "Lock"; readonly keyHash: string }
  | { readonly _tag: "Released"; readonly keyHash: string }
  | { readonly _tag: "Extended"; readonly keyHash: string; readonly until: number; readonly capMillis: number }

/** The write of a plan: the next document, the journal entries, index keys and alias claims. */
export interface Write {
  readonly document: HolderDocument
  readonly entries: ReadonlyArray<JournalEntry>
  readonly index: ReadonlyArray<IndexKey>
  /** Balance-group aliases the write claims for the holder (see `CommitRequest.claims`). */
  readonly claims: ReadonlyArray<string>
}

/** What one attempt decided: a result, and the write (if any) that makes it true. */
export interface Plan<A> {
  readonly result: A
  /** Absent when the result needs no write (a read, a replay, nothing to release). */
  readonly write?: Write
  /** Published after the write is committed. */
  readonly events: ReadonlyArray<CreditEvent>
}

/** What a planner sees: the holder as loaded, and the journal entry of the call's reference, if any. */
export interface Snapshot {
  readonly stored: StoredHolder | null
  /** The entry already recorded under the operation's `reference` (see {@link Transaction.reference}). */
  readonly referenced: JournalEntry | null
}

/** The answer to give when the witness shows that a write whose reply was lost did land. */
export interface Landed<A> {
  readonly result: A
  readonly events: ReadonlyArray<CreditEvent>
}

/** One operation on one holder, as the transaction core runs it. */
export interface Transaction<A, E> {
  readonly ref: HolderRef
  /** Proves this call's write landed; the same for every attempt. */
  readonly witness: Witness
  /** When set, the entry with this idempotency reference is read with each snapshot. */
  readonly reference?: string | undefined
  /** The refusal when an alias the write claims belongs to another holder (for writes with claims). */
  readonly claimed?: ((alias: string) => E) | undefined
  /**
   * Decides at `now` on a snapshot: a plan, or a refusal. Pure but for what a call mints once and
   * keeps (a lock grant's key).
   */
  readonly plan: (snapshot: Snapshot, now: number) => Either.Either<Plan<A>, E>
  /**
   * The answer when the witness was found after a lost reply. `stored` is the holder as read then,
   * `entry` the witness entry (for an `Entry` witness), `sent` the last plan whose commit was lost.
   */
  readonly landed: (proof: {
    readonly stored: StoredHolder
    readonly entry: JournalEntry | null
    readonly sent: Plan<A>
    readonly now: number
  }) => Landed<A>
}
