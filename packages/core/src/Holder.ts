/**
 * Credit holders: how they are named, what is stored for each, and how their credit is shown.
 *
 * @module
 */
import { Either, Schema } from "effect"
import { CurrencyCode } from "./Currency.js"
import { IdempotencyConflict } from "./Errors.js"
import type { JournalEntry } from "./Journal.js"
import type { ResourceLimits } from "./Limits.js"
import type { LockState } from "./Lock.js"
import type { IndexKey } from "./Storage.js"

const forbidden = /[/\s\p{Cc}]/u

/**
 * An identifier: 1–128 characters (code points), no `/`, no whitespace, no control characters.
 * BRM ids such as `0.0.0.1+-balance_group+82896` are valid.
 */
export const Id = Schema.String.pipe(
  Schema.filter((s) => {
    const length = [...s].length
    if (length < 1) return "must not be empty"
    if (length > 128) return `must be at most 128 characters, got ${length}`
    if (forbidden.test(s)) return "must not contain '/', whitespace or control characters"
    return true
  }),
  Schema.annotations({ identifier: "Id", description: "1–128 characters; no '/', whitespace or control characters" }),
)

/** The kinds of holder, in their URL path form. */
export const HolderType = Schema.Literal("contracts", "customers")

/** The kinds of holder, in their URL path form. */
export type HolderType = typeof HolderType.Type

/** Names one credit holder: a customer's contract (subscription) or the customer itself. */
export const HolderRef = Schema.Struct({
  customerId: Id,
  holderType: HolderType,
  holderId: Id,
}).annotations({ identifier: "HolderRef" })

/** Names one credit holder. */
export interface HolderRef {
  readonly customerId: string
  readonly holderType: HolderType
  readonly holderId: string
}

/** A string that names a holder uniquely; ids contain no `/`, so it is unambiguous. */
export const holderKey = (ref: HolderRef): string => `${ref.customerId}/${ref.holderType}/${ref.holderId}`

/** Whether two references name the same holder. */
export const sameHolder = (a: HolderRef, b: HolderRef): boolean =>
  a.customerId === b.customerId && a.holderType === b.holderType && a.holderId === b.holderId

/** The singular holder type used in responses (`"contract"`, `"customer"`). */
export const singularType = (type: HolderType): "contract" | "customer" =>
  type === "contracts" ? "contract" : "customer"

/** The stored balance of one currency: `value` in the currency's minor unit, `updatedAt` in epoch ms. */
export interface Balance {
  readonly currencyCode: string
  readonly value: number
  readonly updatedAt: number
}

/**
 * Everything stored for one holder, as one document. Adapters persist it whole (see
 * {@link encodeDocument}); only the engine interprets it.
 */
export interface HolderDocument {
  readonly ref: HolderRef
  /** The balance-group alias; defaults to `ref.holderId`. */
  readonly balanceGroupId: string
  /** When the holder was opened, epoch ms. */
  readonly openedAt: number
  /** One balance per currency, in the order currencies first appeared. */
  readonly balances: ReadonlyArray<Balance>
  /** The last lock granted, live or not; liveness is judged against the clock at each operation. */
  readonly lock: LockState | null
  /** The `seq` of the last journal entry (entries are numbered from 1). */
  readonly journalSeq: number
  /** Credit limits per currency; absent until limits are first set. */
  readonly limits?: ReadonlyArray<ResourceLimits>
}

/** A holder document together with the storage revision it was read at. */
export interface StoredHolder {
  readonly revision: number
  readonly document: HolderDocument
}

/** The document format written by {@link encodeDocument}; bumped on incompatible change. */
const documentFormat = 1

/** Serialises a holder document for storage (JSON). */
export const encodeDocument = (document: HolderDocument): string =>
  JSON.stringify({ format: documentFormat, ...document })

/**
 * Reads a document written by {@link encodeDocument}. Throws on a document of an unknown format;
 * adapters turn that into StorageUnavailable.
 */
export const decodeDocument = (json: string): HolderDocument => {
  const { format, ...document } = JSON.parse(json) as HolderDocument & { format: number }
  if (format !== documentFormat) {
    throw new Error(`holder document format ${format} is not supported (expected ${documentFormat})`)
  }
  return document
}

/** One credit as shown to callers: `{ type: "monetary", amount: { currencyCode, value }, updatedAt }`. */
export const Credit = Schema.Struct({
  type: Schema.Literal("monetary"),
  amount: Schema.Struct({ currencyCode: CurrencyCode, value: Schema.Number }),
  updatedAt: Schema.DateFromSelf,
}).annotations({ identifier: "Credit" })

/** One credit as shown to callers. */
export type Credit = typeof Credit.Type

/** A holder and its current credit, as returned by reads, locks and modifications. */
export interface CreditView {
  readonly holder: HolderRef
  readonly balanceGroupId: string
  readonly current: { readonly credit: ReadonlyArray<Credit> }
}

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

/** Options for opening a holder. */
export const OpenHolderOptions = Schema.Struct({
  balanceGroupId: Schema.optional(Id),
})

/** Options for opening a holder. */
export interface OpenHolderOptions {
  readonly balanceGroupId?: string | undefined
}

/** The keys a holder is found by: its customer, its subscription (contracts only), its balance group. */
export const holderIndexKeys = (document: HolderDocument): ReadonlyArray<IndexKey> => [
  { kind: "customer", value: document.ref.customerId },
  ...(document.ref.holderType === "contracts" ? [{ kind: "subscription" as const, value: document.ref.holderId }] : []),
  { kind: "balanceGroup", value: document.balanceGroupId },
]

/** The keys a journal entry is found by (as an "order"): its id and its reference. */
export const entryIndexKeys = (entries: ReadonlyArray<JournalEntry>): ReadonlyArray<IndexKey> =>
  entries.flatMap((e) => [
    { kind: "order" as const, value: e.id },
    ...(e.reference === undefined ? [] : [{ kind: "order" as const, value: e.reference }]),
  ])

/** What opening a holder does: nothing when it is open already, else the new document and entry. */
export type OpenDecision =
  | { readonly _tag: "AlreadyOpen"; readonly document: HolderDocument }
  | { readonly _tag: "Create"; readonly document: HolderDocument; readonly entry: JournalEntry }

/**
 * Opens a holder, idempotently. Re-opening with the same (or no) balance group is a no-op;
 * re-opening with a different balance group → IdempotencyConflict.
 */
export const decideOpen = (
  existing: HolderDocument | null,
  ref: HolderRef,
  options: OpenHolderOptions,
  now: number,
  entryId: string,
): Either.Either<OpenDecision, IdempotencyConflict> => {
  if (existing !== null) {
    if (options.balanceGroupId !== undefined && options.balanceGroupId !== existing.balanceGroupId) {
      return Either.left(
        new IdempotencyConflict({
          detail: `holder is already open with balance group "${existing.balanceGroupId}"`,
        }),
      )
    }
    return Either.right({ _tag: "AlreadyOpen", document: existing })
  }
  const document: HolderDocument = {
    ref,
    balanceGroupId: options.balanceGroupId ?? ref.holderId,
    openedAt: now,
    balances: [],
    lock: null,
    journalSeq: 1,
  }
  const entry: JournalEntry = { id: entryId, seq: 1, at: now, holder: ref, kind: "opened", changes: [] }
  return Either.right({ _tag: "Create", document, entry })
}
