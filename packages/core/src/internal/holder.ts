/**
 * The rules of `Holder.ts`: showing a stored holder, requiring it to be open, and opening it.
 *
 * @internal
 */
import { Either } from "effect"
import { HolderNotFound, IdempotencyConflict } from "../Errors.js"
import type {
  Balance,
  Credit,
  CreditView,
  HolderDocument,
  HolderRef,
  OpenHolderOptions,
  OpenResult,
} from "../Holder.js"
import type { JournalEntry } from "../Journal.js"
import { entryIndexKeys, holderIndexKeys, type StoredHolder } from "../Storage.js"
import type { Transaction } from "./plan.js"

/** Shows stored balances as credits. */
export const toCredit = (balances: ReadonlyArray<Balance>): ReadonlyArray<Credit> =>
  balances.map((b) => ({
    type: "monetary" as const,
    amount: { currencyCode: b.currencyCode, value: b.value },
    updatedAt: new Date(b.updatedAt),
  }))

/** The caller's view of a stored holder. */
export const view = (document: HolderDocument): CreditView => ({
  holder: document.ref,
  balanceGroupId: document.balanceGroupId,
  current: { credit: toCredit(document.balances) },
})

/** The holder as loaded, or HolderNotFound when it was never opened. */
export const requireOpen = (
  ref: HolderRef,
  stored: StoredHolder | null,
): Either.Either<StoredHolder, HolderNotFound> =>
  stored === null
    ? Either.left(
        new HolderNotFound({
          detail: `holder ${ref.holderType}/${ref.holderId} of customer ${ref.customerId} was never opened`,
        }),
      )
    : Either.right(stored)

/**
 * Opens a holder, idempotently; `entryId` is minted once per call. A new holder gets its document
 * and an `opened` journal entry, and claims its balance group if one is given. Re-opening with the
 * same (or no) balance group changes nothing; with one, a holder that has none attaches it (a
 * `balance-group` entry, and the claim); with a different one than it has → IdempotencyConflict.
 * A balance group claimed by another holder → IdempotencyConflict (the commit answers Claimed).
 */
export const openTransaction = (
  ref: HolderRef,
  options: OpenHolderOptions,
  entryId: string,
): Transaction<OpenResult, IdempotencyConflict> => ({
  ref,
  witness: { _tag: "Entry", id: entryId },
  claimed: (alias) => new IdempotencyConflict({ detail: `balance group "${alias}" already belongs to another holder` }),
  plan: ({ stored }, now) => {
    const wanted = options.balanceGroupId
    if (stored === null) {
      const document: HolderDocument = {
        ref,
        balanceGroupId: wanted ?? null,
        openedAt: now,
        balances: [],
        lock: null,
        journalSeq: 1,
      }
      const entry: JournalEntry = { id: entryId, seq: 1, at: now, holder: ref, kind: "opened", changes: [] }
      return Either.right({
        result: { holder: ref, balanceGroupId: document.balanceGroupId, created: true },
        write: {
          document,
          entries: [entry],
          index: [...holderIndexKeys(document), ...entryIndexKeys([entry])],
          claims: wanted === undefined ? [] : [wanted],
        },
        events: [],
      })
    }
    const existing = stored.document
    if (wanted === undefined || wanted === existing.balanceGroupId) {
      return Either.right({
        result: { holder: ref, balanceGroupId: existing.balanceGroupId, created: false },
        events: [],
      })
    }
    if (existing.balanceGroupId !== null) {
      return Either.left(
        new IdempotencyConflict({ detail: `holder is already open with balance group "${existing.balanceGroupId}"` }),
      )
    }
    const seq = existing.journalSeq + 1
    const entry: JournalEntry = {
      id: entryId,
      seq,
      at: now,
      holder: ref,
      kind: "balance-group",
      changes: [],
      balanceGroupId: wanted,
    }
    return Either.right({
      result: { holder: ref, balanceGroupId: wanted, created: false },
      write: {
        document: { ...existing, balanceGroupId: wanted, journalSeq: seq },
        entries: [entry],
        index: entryIndexKeys([entry]),
        claims: [wanted],
      },
      events: [],
    })
  },
  landed: ({ stored, entry }) => ({
    result: { holder: ref, balanceGroupId: stored.document.balanceGroupId, created: entry?.kind === "opened" },
    events: [],
  }),
})
