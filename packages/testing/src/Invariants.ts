/**
 * An invariant checker over a store and a set of holders, reading the stored documents and
 * journals straight from a `Storage` (not through the engine, so it also judges what an adapter
 * or a direct write left behind). It checks, for each holder:
 *
 * - `journal-sum`: for each currency, the journal's deltas sum to the stored value, and each
 *   change's `after` is its `before` plus its `delta`, continuing the previous change;
 * - `seq-gap`: entries are numbered 1..n without gaps or repeats, and n is the document's `journalSeq`;
 * - `single-live-lock`: at most one lock is live — the document's lock is the last one granted
 *   (its fencing token is the holder's last), and modifications were made under non-decreasing
 *   lock tokens (a lower token after a higher one means two locks were in use at once);
 * - `below-minimum`: no debit left a credit below the minimum in force at that change (0 without
 *   a credit limit, −(effective limit) with one, nothing when unlimited or overridden), judged
 *   with the limits the journal shows in force at that moment;
 * - `reference-reused`: every idempotency reference was applied at most once;
 * - `holder-missing`: a holder of the set was never opened.
 *
 * The report names each violation; `ok` is true when there is none.
 *
 * @module
 */
import type { HolderRef } from "@creditlock/core"
import {
  holderKey,
  type JournalEntry,
  type ResourceLimits,
  Storage,
  type StorageUnavailable,
} from "@creditlock/core/storage"
import { Effect, Option } from "effect"

/** The invariants {@link check} verifies. */
export type Invariant =
  | "journal-sum"
  | "seq-gap"
  | "single-live-lock"
  | "below-minimum"
  | "reference-reused"
  | "holder-missing"

/** One broken invariant on one holder, said in words. */
export interface Violation {
  readonly invariant: Invariant
  readonly holder: HolderRef
  readonly detail: string
}

/** What {@link check} found. */
export interface InvariantReport {
  /** True when no invariant is broken. */
  readonly ok: boolean
  /** How many holders were checked. */
  readonly holders: number
  readonly violations: ReadonlyArray<Violation>
}

/** The minimum credit in force for `limits` at `at`; `null` when nothing is enforced. */
const minimumAt = (limits: ResourceLimits | undefined, at: number): number | null => {
  if (limits === undefined) return 0
  if (limits.overrideCreditLimit) return null
  const active = limits.temporary.filter((t) => t.validFrom <= at && at < t.validTo)
  if (limits.limit === null && active.length === 0) return 0
  let effective: number | "unlimited" = limits.limit ?? 0
  for (const t of active) {
    if (effective === "unlimited" || t.limit === "unlimited") effective = "unlimited"
    else effective = Math.max(effective, t.limit)
  }
  return effective === "unlimited" ? null : -effective
}

/** Checks one holder's document and journal; pure. */
const checkHolder = (
  holder: HolderRef,
  document: {
    readonly balances: ReadonlyArray<{ readonly currencyCode: string; readonly value: number }>
    readonly journalSeq: number
    readonly lock: { readonly token?: number } | null
    readonly lastLockToken?: number
  },
  journal: ReadonlyArray<JournalEntry>,
): ReadonlyArray<Violation> => {
  const violations: Array<Violation> = []
  const violate = (invariant: Invariant, detail: string) => violations.push({ invariant, holder, detail })

  // seq-gap
  journal.forEach((entry, i) => {
    if (entry.seq !== i + 1) violate("seq-gap", `entry ${entry.id} has seq ${entry.seq} at position ${i + 1}`)
  })
  if (journal.length !== document.journalSeq) {
    violate(
      "seq-gap",
      `the document's journalSeq is ${document.journalSeq} but the journal holds ${journal.length} entries`,
    )
  }

  // journal-sum, below-minimum, reference-reused, lock tokens
  const running = new Map<string, number>()
  const limits = new Map<string, ResourceLimits>()
  const references = new Map<string, Array<number>>()
  let lastToken: number | undefined
  for (const entry of journal) {
    if (entry.kind === "limits" && entry.limits !== undefined)
      limits.set(entry.limits.after.currencyCode, entry.limits.after)
    if (entry.reference !== undefined)
      references.set(entry.reference, [...(references.get(entry.reference) ?? []), entry.seq])
    if (entry.lockToken !== undefined) {
      if (lastToken !== undefined && entry.lockToken < lastToken) {
        violate(
          "single-live-lock",
          `entry seq ${entry.seq} was made under lock token ${entry.lockToken} after one made under token ${lastToken}`,
        )
      }
      lastToken = Math.max(lastToken ?? entry.lockToken, entry.lockToken)
    }
    for (const change of entry.changes) {
      const previous = running.get(change.currencyCode) ?? 0
      if (change.before !== previous || change.after !== change.before + change.delta) {
        violate(
          "journal-sum",
          `entry seq ${entry.seq} changes ${change.currencyCode} from ${change.before} by ${change.delta} to ${change.after}, but the credit was ${previous}`,
        )
      }
      running.set(change.currencyCode, previous + change.delta)
      if (change.delta < 0) {
        const minimum = minimumAt(limits.get(change.currencyCode), entry.at)
        if (minimum !== null && change.after < minimum) {
          violate(
            "below-minimum",
            `entry seq ${entry.seq} left ${change.currencyCode} at ${change.after}, below the minimum ${minimum} in force at ${new Date(entry.at).toISOString()}`,
          )
        }
      }
    }
  }
  const codes = new Set([...running.keys(), ...document.balances.map((b) => b.currencyCode)])
  for (const code of codes) {
    const value = document.balances.find((b) => b.currencyCode === code)?.value ?? 0
    const sum = running.get(code) ?? 0
    if (value !== sum) violate("journal-sum", `${code} credit is ${value} but the journal's deltas sum to ${sum}`)
  }
  for (const [reference, seqs] of references) {
    if (seqs.length > 1) {
      violate(
        "reference-reused",
        `reference "${reference}" was applied ${seqs.length} times (entries seq ${seqs.join(", ")})`,
      )
    }
  }
  const issued = document.lastLockToken ?? 0
  const token = document.lock?.token
  if (token !== undefined && token !== issued) {
    violate("single-live-lock", `the holder's lock has token ${token} but the last token granted is ${issued}`)
  }
  if (lastToken !== undefined && lastToken > issued) {
    violate(
      "single-live-lock",
      `a modification was made under lock token ${lastToken}, which was never granted (last ${issued})`,
    )
  }
  return violations
}

/** Reads every journal entry of a holder, page by page. */
const readJournal = (storage: Storage["Type"], ref: HolderRef) =>
  Effect.gen(function* () {
    const entries: Array<JournalEntry> = []
    for (;;) {
      const page = yield* storage.journal(ref, { afterSeq: entries.at(-1)?.seq ?? 0, limit: 1000 })
      entries.push(...page)
      if (page.length < 1000) return entries
    }
  })

/**
 * Checks the invariants of `holders` in the `Storage` in context. Fails only when the storage
 * cannot be read (StorageUnavailable); a broken invariant is a {@link Violation} in the report.
 */
export const check = (holders: Iterable<HolderRef>): Effect.Effect<InvariantReport, StorageUnavailable, Storage> =>
  Effect.flatMap(Storage, (storage) => checkStorage(storage, holders))

/** {@link check} over a given storage service. */
export const checkStorage = (
  storage: Storage["Type"],
  holders: Iterable<HolderRef>,
): Effect.Effect<InvariantReport, StorageUnavailable> =>
  Effect.gen(function* () {
    const unique = [...new Map([...holders].map((ref) => [holderKey(ref), ref])).values()]
    const violations: Array<Violation> = []
    for (const holder of unique) {
      const stored = yield* storage.load(holder)
      if (Option.isNone(stored)) {
        violations.push({ invariant: "holder-missing", holder, detail: `${holderKey(holder)} was never opened` })
        continue
      }
      violations.push(...checkHolder(holder, stored.value.document, yield* readJournal(storage, holder)))
    }
    return { ok: violations.length === 0, holders: unique.length, violations }
  })

/** The report as text, one line per violation (for assertion messages). */
export const format = (report: InvariantReport): string =>
  report.ok
    ? `${report.holders} holder(s): every invariant holds`
    : [
        `${report.violations.length} violation(s) in ${report.holders} holder(s):`,
        ...report.violations.map((v) => `- ${v.invariant} on ${holderKey(v.holder)}: ${v.detail}`),
      ].join("\n")
