/**
 * The `Storage` service: what an adapter must provide. An adapter only persists, atomically; every
 * rule lives in the engine, which loads a snapshot, decides with pure functions, and commits with
 * a compare-and-set on the holder's revision (reloading and deciding again on conflict).
 *
 * This module is the entry point `@creditlock/core/storage`: the contract, the document codec,
 * the index keys the engine derives, and (re-exported at the end) every type the contract's
 * values are made of, so an adapter imports from one place.
 *
 * @module
 */
import { Context, type Effect, type Option } from "effect"
import type { OutcomeUnknown, StorageUnavailable } from "./Errors.js"
import type { HolderDocument, HolderRef } from "./Holder.js"
import type { JournalEntry } from "./Journal.js"

/** A holder document together with the storage revision it was read at. */
export interface StoredHolder {
  readonly revision: number
  readonly document: HolderDocument
}

/** The revision a commit expects: the one it loaded, or `"absent"` when creating the holder. */
export type ExpectedRevision = number | "absent"

/**
 * A lookup key the engine asks an adapter to index with a holder (many holders per key):
 * - `customer`: the customer id (every holder of the customer);
 * - `subscription`: the holder id of a `contracts` holder;
 * - `order`: a journal entry id or a modification reference.
 */
export interface IndexKey {
  readonly kind: "customer" | "subscription" | "order"
  readonly value: string
}

/**
 * What {@link Storage} can look up: an {@link IndexKey}, or a balance-group alias, which at most
 * one holder ever claims (see `CommitRequest.claims`).
 */
export type LookupKey = IndexKey | { readonly kind: "balanceGroup"; readonly value: string }

/** One atomic write: the next document, the journal entries it appends, new index keys and claims. */
export interface CommitRequest {
  readonly ref: HolderRef
  readonly expected: ExpectedRevision
  readonly document: HolderDocument
  /** Appended in order; their `seq` values continue the holder's journal without gaps. */
  readonly entries: ReadonlyArray<JournalEntry>
  /** Keys to associate with `ref` (adding to, never replacing, what is indexed already). */
  readonly index: ReadonlyArray<IndexKey>
  /**
   * Balance-group aliases this write claims for `ref`. An alias is claimed by one holder for
   * good: claiming one that `ref` holds already is a no-op; one that another holder holds makes
   * the whole commit answer `Claimed`, with nothing written.
   */
  readonly claims: ReadonlyArray<string>
}

/**
 * The outcome of a compare-and-set commit:
 * - `Committed`: everything was written; `revision` is the document's new revision;
 * - `Conflict`: the stored revision was not the expected one, or the store refused the write for
 *   a race with another writer (a serialization failure); nothing was written. The engine reads
 *   the holder again and decides again;
 * - `Claimed`: an alias in `claims` belongs to `holder`; nothing was written.
 */
export type CommitResult =
  | { readonly _tag: "Committed"; readonly revision: number }
  | { readonly _tag: "Conflict" }
  | { readonly _tag: "Claimed"; readonly alias: string; readonly holder: HolderRef }

/** A string that names a holder uniquely (ids contain no `/`, so it is unambiguous): a storage key. */
export const holderKey = (ref: HolderRef): string => `${ref.customerId}/${ref.holderType}/${ref.holderId}`

/**
 * The keys a holder is found by: its customer and, for contracts, its subscription id. The engine
 * sends them with the commit that creates the holder; an adapter that rebuilds its indexes derives
 * them with this function (and {@link entryIndexKeys}), so the rule stays the engine's.
 */
export const holderIndexKeys = (document: HolderDocument): ReadonlyArray<IndexKey> => [
  { kind: "customer", value: document.ref.customerId },
  ...(document.ref.holderType === "contracts" ? [{ kind: "subscription" as const, value: document.ref.holderId }] : []),
]

/** The keys a journal entry is found by (as an "order"): its id and its reference. */
export const entryIndexKeys = (entries: ReadonlyArray<JournalEntry>): ReadonlyArray<IndexKey> =>
  entries.flatMap((e) => [
    { kind: "order" as const, value: e.id },
    ...(e.reference === undefined ? [] : [{ kind: "order" as const, value: e.reference }]),
  ])

/**
 * The document format written by {@link encodeDocument}; bumped on incompatible change. Format 2
 * added the lock fencing token (`lastLockToken`, `lock.token`): a version that knows only format 1
 * refuses these documents instead of granting locks without advancing the token. Format 1
 * documents are read as they are (no token issued yet).
 */
const documentFormat = 2

/** The older formats {@link decodeDocument} still reads. */
const readableFormats: ReadonlyArray<number> = [1, documentFormat]

/** Serialises a holder document for storage (JSON). */
export const encodeDocument = (document: HolderDocument): string =>
  JSON.stringify({ format: documentFormat, ...document })

/**
 * Reads a document written by {@link encodeDocument}. Throws on a document of an unknown format;
 * adapters turn that into StorageUnavailable.
 */
export const decodeDocument = (json: string): HolderDocument => {
  const { format, ...document } = JSON.parse(json) as HolderDocument & { format: number }
  if (!readableFormats.includes(format)) {
    throw new Error(
      `holder document format ${format} is not supported (this version reads ${readableFormats.join(" and ")}); upgrade @creditlock/core`,
    )
  }
  return document
}

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
 * StorageUnavailable (no driver exception escapes). A storage must not call back into an engine
 * that uses it for the same holder: within an engine the operations on one holder take turns, so
 * such a call would wait for itself. Implementations: @creditlock/memory,
 * @creditlock/sqlite, @creditlock/redis, @creditlock/postgres; all pass the same conformance suite.
 */
export class Storage extends Context.Tag("@creditlock/core/Storage")<
  Storage,
  {
    /** Reads the holder's document and its current revision; `None` when it was never opened. */
    readonly load: (ref: HolderRef) => Effect.Effect<Option.Option<StoredHolder>, StorageUnavailable>

    /**
     * One atomic compare-and-set. When the stored revision equals `expected` (or the holder is
     * absent and `expected` is `"absent"`) and no alias in `claims` belongs to another holder,
     * writes the document at revision `expected + 1` (1 when created), appends the journal
     * entries, adds the index keys and records the claims — all of it, or nothing — and answers
     * `Committed` with the new revision. Otherwise writes nothing and answers `Conflict` (or
     * `Claimed`).
     *
     * Failures say what is known about the write:
     * - `StorageUnavailable`: the write was certainly not applied (the request never reached the
     *   backend, or the backend refused it and rolled it back);
     * - `OutcomeUnknown`: it may have been applied (it was sent and no answer came back). The
     *   engine settles it by reading the write's witness (the journal entry or lock it made).
     *
     * An adapter must never send a commit twice, nor send it late (after it answered): a driver's
     * automatic retry after a reconnection, an offline queue or a delayed redirection could apply
     * a write after the engine settled it as not applied.
     */
    readonly commit: (request: CommitRequest) => Effect.Effect<CommitResult, StorageUnavailable | OutcomeUnknown>

    /**
     * The holders indexed under `key`, in no particular order, without duplicates. For an
     * `IndexKey`, an adapter whose indexes are not written atomically with the holder may return
     * a stale candidate (a holder whose commit failed after its pointer was written); the engine
     * checks every candidate against the holder it names. For a `balanceGroup` key, exactly the
     * holder whose committed write claimed the alias, or none — never a claimant whose commit did
     * not land. A committed key is never missing.
     */
    readonly lookup: (key: LookupKey) => Effect.Effect<ReadonlyArray<HolderRef>, StorageUnavailable>

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

// What the contract's values are made of, defined in their concept modules.

/** The failures a `Storage` method may answer (`commit` on {@link Storage} says which is which). */
export { OutcomeUnknown, StorageUnavailable } from "./Errors.js"
/** Holders: how they are named and the document stored for each. */
export { type Balance, type HolderDocument, HolderRef, HolderType } from "./Holder.js"
/** Journal entries, as appended by commits and read back by `journal` and `findEntry`. */
export type { Change, JournalEntry, JournalKind } from "./Journal.js"
/** The limits and thresholds a document and its entries record. */
export type { LimitAmount, ReachedThresholds, ResourceLimits, TemporaryLimit, ThresholdRecord } from "./Limits.js"
/** The lock a document records (only the SHA-256 of its key). */
export type { LockState } from "./Lock.js"
