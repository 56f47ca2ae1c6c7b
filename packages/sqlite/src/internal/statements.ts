/**
 * The adapter's reads and writes as plain synchronous functions over prepared statements, created
 * once per connection. They throw whatever the driver or the decoders throw; the Effect layer in
 * `SqliteStorage.ts` turns every such exception into StorageUnavailable.
 *
 * @internal
 */
import {
  type CommitRequest,
  type CommitResult,
  decodeDocument,
  type EntrySelector,
  encodeDocument,
  type HolderRef,
  type HolderType,
  holderKey,
  type JournalEntry,
  type JournalRange,
  type LookupKey,
  type StoredHolder,
} from "@creditlock/core/storage"
import type Database from "better-sqlite3"
import { versionTable } from "./migrations.js"

interface HolderRow {
  readonly revision: number
  readonly document: string
}

interface RefRow {
  readonly customer_id: string
  readonly holder_type: string
  readonly holder_id: string
}

interface OwnerRow extends RefRow {
  readonly holder_key: string
}

const toRef = (row: RefRow): HolderRef => ({
  customerId: row.customer_id,
  holderType: row.holder_type as HolderType,
  holderId: row.holder_id,
})

/**
 * Thrown by {@link Statements.commit} when the `COMMIT` (or, inside a caller's transaction, the
 * `RELEASE`) itself failed, after every write of the transaction had been made: SQLite may have
 * written the commit record to the WAL before the error (an fsync that fails after the frames
 * were written, say), and crash recovery would then replay it. The outcome is unknown.
 */
export class CommitOutcomeUnknown extends Error {
  override readonly name = "CommitOutcomeUnknown"
  constructor(override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : "COMMIT failed")
  }
}

/** The persistence operations of one connection. */
export interface Statements {
  readonly load: (ref: HolderRef) => StoredHolder | undefined
  /**
   * One `BEGIN IMMEDIATE` transaction: revision check, claim check, then every write. Throws
   * {@link CommitOutcomeUnknown} when the COMMIT itself failed, and any other exception only when
   * the transaction was rolled back (nothing of it written).
   */
  readonly commit: (request: CommitRequest) => CommitResult
  readonly lookup: (key: LookupKey) => ReadonlyArray<HolderRef>
  readonly findEntry: (ref: HolderRef, selector: EntrySelector) => JournalEntry | undefined
  readonly journal: (ref: HolderRef, range: JournalRange) => ReadonlyArray<JournalEntry>
  readonly ping: () => void
}

const decodeEntry = (json: string): JournalEntry => JSON.parse(json) as JournalEntry

/** Prepares every statement the adapter uses; the schema must be migrated already. */
export const prepare = (db: Database.Database): Statements => {
  // Numbers, not BigInts, even on a caller's connection set to `defaultSafeIntegers(true)`:
  // revisions and versions stay far below 2^53.
  const selectRevision = db
    .prepare<[string], number>("SELECT revision FROM creditlock_holders WHERE holder_key = ?")
    .pluck()
    .safeIntegers(false)
  const selectHolder = db
    .prepare<[string], HolderRow>("SELECT revision, document FROM creditlock_holders WHERE holder_key = ?")
    .safeIntegers(false)
  const insertHolder = db.prepare<[string, string, string, string, string]>(
    `INSERT INTO creditlock_holders (holder_key, customer_id, holder_type, holder_id, revision, document)
     VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (holder_key) DO NOTHING`,
  )
  const updateHolder = db.prepare<[number, string, string, number]>(
    "UPDATE creditlock_holders SET revision = ?, document = ? WHERE holder_key = ? AND revision = ?",
  )
  const insertEntry = db.prepare<[string, number, string, string | null, string]>(
    "INSERT INTO creditlock_journal (holder_key, seq, id, reference, entry) VALUES (?, ?, ?, ?, ?)",
  )
  const insertIndex = db.prepare<[string, string, string]>(
    "INSERT OR IGNORE INTO creditlock_index (kind, value, holder_key) VALUES (?, ?, ?)",
  )
  const selectIndexed = db.prepare<[string, string], RefRow>(
    `SELECT h.customer_id, h.holder_type, h.holder_id
     FROM creditlock_index AS i JOIN creditlock_holders AS h ON h.holder_key = i.holder_key
     WHERE i.kind = ? AND i.value = ?`,
  )
  const selectAliasOwner = db.prepare<[string], OwnerRow>(
    `SELECT h.holder_key, h.customer_id, h.holder_type, h.holder_id
     FROM creditlock_aliases AS a JOIN creditlock_holders AS h ON h.holder_key = a.holder_key
     WHERE a.alias = ?`,
  )
  // A plain INSERT: the claim was checked free in this transaction, and should it be taken after
  // all, the constraint error rolls the whole commit back rather than writing it unclaimed.
  const insertAlias = db.prepare<[string, string]>("INSERT INTO creditlock_aliases (alias, holder_key) VALUES (?, ?)")
  const selectEntryById = db
    .prepare<[string, string], string>("SELECT entry FROM creditlock_journal WHERE holder_key = ? AND id = ?")
    .pluck()
  // References are unique per holder by the engine's rules; should a holder ever hold two, the
  // latest wins, as in the reference adapter.
  const selectEntryByReference = db
    .prepare<[string, string], string>(
      "SELECT entry FROM creditlock_journal WHERE holder_key = ? AND reference = ? ORDER BY seq DESC LIMIT 1",
    )
    .pluck()
  const selectJournal = db
    .prepare<[string, number, number], string>(
      "SELECT entry FROM creditlock_journal WHERE holder_key = ? AND seq > ? ORDER BY seq LIMIT ?",
    )
    .pluck()
  const selectVersion = db.prepare(`SELECT max(version) FROM ${versionTable}`).pluck().safeIntegers(false)

  interface Encoded {
    readonly request: CommitRequest
    readonly key: string
    readonly document: string
    readonly entries: ReadonlyArray<string>
  }

  /** Set by the transaction body once every write is made: a later exception is the COMMIT's. */
  let written = false

  const write = db.transaction((encoded: Encoded): CommitResult => {
    const { request, key } = encoded
    const { ref, expected } = request
    // Every check comes first, inside the write lock, so nothing is written unless all pass.
    if ((selectRevision.get(key) ?? "absent") !== expected) return { _tag: "Conflict" }
    const claims: Array<string> = []
    for (const alias of new Set(request.claims)) {
      const owner = selectAliasOwner.get(alias)
      if (owner === undefined) claims.push(alias)
      else if (owner.holder_key !== key) return { _tag: "Claimed", alias, holder: toRef(owner) }
    }
    const revision = expected === "absent" ? 1 : expected + 1
    const changed =
      expected === "absent"
        ? insertHolder.run(key, ref.customerId, ref.holderType, ref.holderId, encoded.document)
        : updateHolder.run(revision, encoded.document, key, expected)
    // Cannot happen under the write lock; thrown (rolling back) rather than committing the rest.
    if (changed.changes !== 1) throw new Error("the holder's revision changed inside the commit's transaction")
    request.entries.forEach((entry, i) => {
      insertEntry.run(key, entry.seq, entry.id, entry.reference ?? null, encoded.entries[i] as string)
    })
    for (const k of request.index) insertIndex.run(k.kind, k.value, key)
    for (const alias of claims) insertAlias.run(alias, key)
    written = true
    return { _tag: "Committed", revision }
  })

  return {
    load: (ref) => {
      const row = selectHolder.get(holderKey(ref))
      return row === undefined ? undefined : { revision: row.revision, document: decodeDocument(row.document) }
    },
    commit: (request) => {
      // Serialised before BEGIN, so the write lock is held only for the writes themselves.
      const encoded = {
        request,
        key: holderKey(request.ref),
        document: encodeDocument(request.document),
        entries: request.entries.map((entry) => JSON.stringify(entry)),
      }
      written = false
      try {
        return write.immediate(encoded)
      } catch (cause) {
        // An exception before the body finished was rolled back by better-sqlite3 (or never began:
        // BEGIN IMMEDIATE failed), so nothing was written. Only a failing COMMIT leaves it unknown.
        if (written) throw new CommitOutcomeUnknown(cause)
        throw cause
      }
    },
    lookup: (key) => {
      if (key.kind === "balanceGroup") {
        const owner = selectAliasOwner.get(key.value)
        return owner === undefined ? [] : [toRef(owner)]
      }
      return selectIndexed.all(key.kind, key.value).map(toRef)
    },
    findEntry: (ref, selector) => {
      const json =
        "id" in selector
          ? selectEntryById.get(holderKey(ref), selector.id)
          : selectEntryByReference.get(holderKey(ref), selector.reference)
      return json === undefined ? undefined : decodeEntry(json)
    },
    journal: (ref, range) => selectJournal.all(holderKey(ref), range.afterSeq, range.limit).map(decodeEntry),
    ping: () => {
      selectVersion.get()
    },
  }
}
