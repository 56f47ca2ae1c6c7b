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
  type IndexKey,
  type JournalEntry,
  type JournalRange,
  type StoredHolder,
} from "@creditlock/core"
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

/** The persistence operations of one connection. */
export interface Statements {
  readonly load: (ref: HolderRef) => StoredHolder | undefined
  readonly commit: (request: CommitRequest) => CommitResult
  readonly lookup: (key: IndexKey) => ReadonlyArray<HolderRef>
  readonly findEntry: (ref: HolderRef, selector: EntrySelector) => JournalEntry | undefined
  readonly journal: (ref: HolderRef, range: JournalRange) => ReadonlyArray<JournalEntry>
  readonly ping: () => void
}

const decodeEntry = (json: string): JournalEntry => JSON.parse(json) as JournalEntry

/** Prepares every statement the adapter uses; the schema must be migrated already. */
export const prepare = (db: Database.Database): Statements => {
  // Numbers, not BigInts, even on a caller's connection set to `defaultSafeIntegers(true)`:
  // revisions and versions stay far below 2^53.
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

  const write = db.transaction((encoded: Encoded): CommitResult => {
    const { request, key } = encoded
    const { ref, expected } = request
    const written =
      expected === "absent"
        ? insertHolder.run(key, ref.customerId, ref.holderType, ref.holderId, encoded.document)
        : updateHolder.run(expected + 1, encoded.document, key, expected)
    // Nothing was written: the stored revision is not the expected one. The empty transaction commits.
    if (written.changes === 0) return "conflict"
    request.entries.forEach((entry, i) => {
      insertEntry.run(key, entry.seq, entry.id, entry.reference ?? null, encoded.entries[i] as string)
    })
    for (const k of request.index) insertIndex.run(k.kind, k.value, key)
    return "committed"
  })

  return {
    load: (ref) => {
      const row = selectHolder.get(holderKey(ref))
      return row === undefined ? undefined : { revision: row.revision, document: decodeDocument(row.document) }
    },
    commit: (request) =>
      // Serialised before BEGIN, so the write lock is held only for the writes themselves.
      write.immediate({
        request,
        key: holderKey(request.ref),
        document: encodeDocument(request.document),
        entries: request.entries.map((entry) => JSON.stringify(entry)),
      }),
    lookup: (key) =>
      selectIndexed.all(key.kind, key.value).map((row) => ({
        customerId: row.customer_id,
        holderType: row.holder_type as HolderType,
        holderId: row.holder_id,
      })),
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
