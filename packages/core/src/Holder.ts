/**
 * Credit holders: how they are named, what is stored for each, and how their credit is shown.
 *
 * @module
 */
import { Either, Schema } from "effect"
import { CurrencyCode } from "./Currency.js"
import { HolderNotFound, IdempotencyConflict } from "./Errors.js"
import type { JournalEntry } from "./Journal.js"
import type { ResourceLimits } from "./Limits.js"
import type { LockState } from "./Lock.js"
import type { Transaction } from "./Plan.js"
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
  /**
   * The balance-group alias the holder claimed (unique among all holders), or `null` when it was
   * opened without one: there is no implicit alias, so no holder can squat another's.
   */
  readonly balanceGroupId: string | null
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
  /** The holder's balance-group alias, `null` when it has none. */
  readonly balanceGroupId: string | null
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
}).annotations({ identifier: "OpenHolderOptions" })

/** Options for opening a holder. */
export interface OpenHolderOptions {
  /**
   * The balance-group alias to claim for the holder: unique among all holders, first claim wins.
   * Without one the holder has no alias (there is no implicit one) and the balance-group calls
   * (`setCreditLimits`, `getCreditLimits`) cannot find it until one is attached by opening it
   * again with one.
   */
  readonly balanceGroupId?: string | undefined
}

/** The result of opening a holder. */
export interface OpenResult {
  readonly holder: HolderRef
  /** The holder's balance-group alias, `null` when it has none. */
  readonly balanceGroupId: string | null
  /** False when the holder was open already (opening is idempotent). */
  readonly created: boolean
}

/** The keys a holder is found by: its customer and, for contracts, its subscription id. */
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
