/**
 * The `Storage` service: what an adapter must provide. An adapter only persists, atomically; every
 * rule lives in the engine, which loads a snapshot, decides with pure functions, and commits with
 * a compare-and-set on the holder's revision (reloading and deciding again on conflict).
 *
 * @module
 */
import { Context, type Effect, type Option } from "effect"
import type { StorageUnavailable } from "./Errors.js"
import type { HolderDocument, HolderRef, StoredHolder } from "./Holder.js"
import type { JournalEntry } from "./Journal.js"

/** The revision a commit expects: the one it loaded, or `"absent"` when creating the holder. */
export type ExpectedRevision = number | "absent"

/**
 * A lookup key the engine asks an adapter to index with a holder:
 * - `customer`: the customer id (every holder of the customer);
 * - `subscription`: the holder id of a `contracts` holder;
 * - `balanceGroup`: the holder's balance-group alias;
 * - `order`: a journal entry id or a modification reference.
 */
export interface IndexKey {
  readonly kind: "customer" | "subscription" | "balanceGroup" | "order"
  readonly value: string
}

/** One atomic write: the next document, the journal entries it appends, and new index keys. */
export interface CommitRequest {
  readonly ref: HolderRef
  readonly expected: ExpectedRevision
  readonly document: HolderDocument
  /** Appended in order; their `seq` values continue the holder's journal without gaps. */
  readonly entries: ReadonlyArray<JournalEntry>
  /** Keys to associate with `ref` (adding to, never replacing, what is indexed already). */
  readonly index: ReadonlyArray<IndexKey>
}

/** The outcome of a compare-and-set commit. */
export type CommitResult = "committed" | "conflict"

/** A position in a holder's journal, for paging. */
export interface JournalRange {
  /** Return entries with `seq` greater than this (0 for the start). */
  readonly afterSeq: number
  /** At most this many entries (≥ 1). */
  readonly limit: number
}

/** Finds a journal entry of one holder by id or by idempotency reference. */
export type EntrySelector = { readonly id: string } | { readonly reference: string }

/**
 * Persistence for holders, their journals and lookup indexes. Every method fails only with
 * StorageUnavailable (no driver exception escapes). Implementations: @creditlock/memory,
 * @creditlock/sqlite, @creditlock/redis; all pass the same conformance suite.
 */
export class Storage extends Context.Tag("@creditlock/core/Storage")<
  Storage,
  {
    /** Reads the holder's document and its current revision; `None` when it was never opened. */
    readonly load: (ref: HolderRef) => Effect.Effect<Option.Option<StoredHolder>, StorageUnavailable>

    /**
     * One atomic compare-and-set. When the stored revision equals `expected` (or the holder is
     * absent and `expected` is `"absent"`), writes the document at revision `expected + 1` (1 when
     * created), appends the journal entries and adds the index keys — all of it, or nothing — and
     * answers `"committed"`. Otherwise writes nothing and answers `"conflict"`. A commit that fails
     * with StorageUnavailable may or may not have been applied; the engine tells by reloading.
     * An adapter must never resend a commit whose outcome it does not know (e.g. a driver's
     * automatic retry after a reconnection): the resend would answer `"conflict"`, the engine
     * would decide again, and a modification could be applied twice.
     */
    readonly commit: (request: CommitRequest) => Effect.Effect<CommitResult, StorageUnavailable>

    /**
     * The holders indexed under `key`, in no particular order, without duplicates. An adapter
     * whose indexes are not written atomically with the holder may return a stale candidate; the
     * engine checks every candidate against the holder it names. A committed key is never missing.
     */
    readonly lookup: (key: IndexKey) => Effect.Effect<ReadonlyArray<HolderRef>, StorageUnavailable>

    /** One journal entry of the holder, by id or reference; `None` when it has none such. */
    readonly findEntry: (
      ref: HolderRef,
      selector: EntrySelector,
    ) => Effect.Effect<Option.Option<JournalEntry>, StorageUnavailable>

    /** The holder's journal entries with `seq > afterSeq`, in `seq` order, at most `limit`. */
    readonly journal: (
      ref: HolderRef,
      range: JournalRange,
    ) => Effect.Effect<ReadonlyArray<JournalEntry>, StorageUnavailable>

    /** Succeeds when the backend answers; a health check. */
    readonly ping: Effect.Effect<void, StorageUnavailable>
  }
>() {}
