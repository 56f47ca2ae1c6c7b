/**
 * Commit requests built by hand, for tests that drive `Storage` without the engine: valid
 * documents and journal entries (seq continuing the journal, changes agreeing with balances).
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import type {
  CommitRequest,
  HolderDocument,
  HolderRef,
  IndexKey,
  JournalEntry,
  StoredHolder,
} from "@creditlock/core/storage"

/** `count` GBP credits continuing the document's journal, each with a reference. */
export const grow = (document: HolderDocument, count: number) => {
  let value = document.balances[0]?.value ?? 0
  const entries: Array<JournalEntry> = []
  for (let i = 1; i <= count; i++) {
    const seq = document.journalSeq + i
    entries.push({
      id: randomUUID(),
      seq,
      at: seq,
      holder: document.ref,
      kind: "modification",
      reason: `credit ${seq}`,
      reference: `ref-${randomUUID()}`,
      changes: [{ currencyCode: "GBP", delta: seq, before: value, after: value + seq }],
    })
    value += seq
  }
  const next: HolderDocument = {
    ...document,
    journalSeq: document.journalSeq + count,
    balances: [{ currencyCode: "GBP", value, updatedAt: count }],
  }
  return { document: next, entries }
}

/** The `order` keys of entries: each id and reference. */
export const orderKeys = (entries: ReadonlyArray<JournalEntry>): ReadonlyArray<IndexKey> =>
  entries.flatMap((e) => [
    { kind: "order" as const, value: e.id },
    ...(e.reference === undefined ? [] : [{ kind: "order" as const, value: e.reference }]),
  ])

/** The commit creating a contract holder that claims `alias`, with `modifications` entries after "opened". */
export const opening = (ref: HolderRef, alias: string, modifications: number): CommitRequest => {
  const opened: HolderDocument = { ref, balanceGroupId: alias, openedAt: 0, balances: [], lock: null, journalSeq: 1 }
  const first: JournalEntry = { id: randomUUID(), seq: 1, at: 0, holder: ref, kind: "opened", changes: [] }
  const { document, entries } = grow(opened, modifications)
  const all = [first, ...entries]
  return {
    ref,
    expected: "absent",
    document,
    entries: all,
    index: [
      { kind: "customer", value: ref.customerId },
      { kind: "subscription", value: ref.holderId },
      ...orderKeys(all),
    ],
    claims: [alias],
  }
}

/** Appends `count` entries, re-claiming the holder's own alias (a no-op claim). */
export const appending = (stored: StoredHolder, count: number): CommitRequest => {
  const { document, entries } = grow(stored.document, count)
  return {
    ref: document.ref,
    expected: stored.revision,
    document,
    entries,
    index: orderKeys(entries),
    claims: stored.document.balanceGroupId === null ? [] : [stored.document.balanceGroupId],
  }
}
