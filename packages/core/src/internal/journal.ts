/**
 * Reading the journal: the invariant check behind `CreditEngine.verify`, and the threshold events
 * a committed entry records. Pure.
 *
 * @internal
 */
import type { ThresholdCrossed } from "../Events.js"
import type { HolderDocument } from "../Holder.js"
import type { JournalEntry, VerifyReport } from "../Journal.js"

/** The threshold events a committed journal entry records. */
export const thresholdEvents = (entry: JournalEntry): ReadonlyArray<ThresholdCrossed> =>
  (entry.thresholds ?? []).map((t) => ({
    _tag: "ThresholdCrossed",
    holder: entry.holder,
    at: new Date(entry.at),
    entryId: entry.id,
    ...t,
  }))

/**
 * Checks the journal invariant: for each currency, the sum of deltas equals the current value,
 * and entries are numbered 1..journalSeq in order. Pure.
 */
export const verifyJournal = (document: HolderDocument, entries: ReadonlyArray<JournalEntry>): VerifyReport => {
  const sums = new Map<string, number>()
  let sequenceOk = entries.length === document.journalSeq
  entries.forEach((entry, i) => {
    if (entry.seq !== i + 1) sequenceOk = false
    for (const change of entry.changes) {
      sums.set(change.currencyCode, (sums.get(change.currencyCode) ?? 0) + change.delta)
    }
  })
  const codes = new Set([...sums.keys(), ...document.balances.map((b) => b.currencyCode)])
  const currencies = [...codes].map((currencyCode) => {
    const value = document.balances.find((b) => b.currencyCode === currencyCode)?.value ?? 0
    const journalSum = sums.get(currencyCode) ?? 0
    return { currencyCode, value, journalSum, ok: value === journalSum }
  })
  return {
    holder: document.ref,
    ok: sequenceOk && currencies.every((c) => c.ok),
    entries: entries.length,
    sequenceOk,
    currencies,
  }
}
