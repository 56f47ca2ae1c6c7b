/**
 * The modification rules of `Modification.ts`: distinct credits, request fingerprints, the
 * all-or-nothing decision, idempotent replay, and the transaction that runs them. Pure.
 *
 * @internal
 */
import { Either } from "effect"
import {
  AmountOutOfRange,
  CreditLimitExceeded,
  DuplicateCreditType,
  type HolderNotFound,
  IdempotencyConflict,
  InsufficientCredit,
  type LockExpired,
  type LockKeyMismatch,
  type LockNotHeld,
} from "../Errors.js"
import type { Balance, HolderDocument, HolderRef } from "../Holder.js"
import type { Change, JournalEntry } from "../Journal.js"
import type { ResourceLimits, ThresholdRecord } from "../Limits.js"
import type { ModifyRequest, ModifyResult } from "../Modification.js"
import { entryIndexKeys } from "../Storage.js"
import { requireOpen, toCredit, view } from "./holder.js"
import { thresholdEvents } from "./journal.js"
import { sha256 } from "./keys.js"
import { evaluateThresholds, limitsFor, minimumCredit, previouslyReached } from "./limits.js"
import { checkKey } from "./lock.js"
import type { Transaction } from "./plan.js"

/** The same credit (type + currency) twice in one request → DuplicateCreditType. */
export const checkDistinct = (request: ModifyRequest): Either.Either<ModifyRequest, DuplicateCreditType> => {
  const seen = new Set<string>()
  for (const m of request.modifications) {
    const key = `${m.type}:${m.changeAmount.currencyCode}`
    if (seen.has(key)) {
      return Either.left(
        new DuplicateCreditType({
          detail: `${m.type} credit in ${m.changeAmount.currencyCode} appears more than once`,
        }),
      )
    }
    seen.add(key)
  }
  return Either.right(request)
}

/**
 * A request's fingerprint: SHA-256 of its reason and modifications in a canonical order. Two
 * requests with the same reference are the same request when their fingerprints match.
 */
export const fingerprint = (request: ModifyRequest): string =>
  sha256(
    JSON.stringify([
      request.reason,
      request.modifications
        .map((m) => [m.type, m.changeAmount.currencyCode, m.changeAmount.value] as const)
        .sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)),
    ]),
  )

/** What a successful modification commits. */
export interface ModifyDecision {
  readonly document: HolderDocument
  readonly entry: JournalEntry
}

/** Everything {@link decideModify} needs; `now`, ids and hashes are computed by the caller. */
export interface ModifyInput {
  readonly document: HolderDocument
  readonly now: number
  readonly keyHash: string
  readonly request: ModifyRequest
  readonly fingerprint: string
  readonly entryId: string
}

/**
 * Applies a modification all-or-nothing: the key must be the live lock's; every resulting value
 * must be a safe integer; a change that lowers a credit must not leave it below the minimum in
 * force at `now` (raising credit is always allowed): 0 without a credit limit (else
 * InsufficientCredit), −(effective limit) with one (else CreditLimitExceeded). Success yields the
 * next document and its journal entry, which records every armed threshold of a changed currency
 * that the change finds reached (see `Limits.ts`).
 */
export const decideModify = (
  input: ModifyInput,
): Either.Either<
  ModifyDecision,
  LockNotHeld | LockKeyMismatch | LockExpired | AmountOutOfRange | InsufficientCredit | CreditLimitExceeded
> =>
  Either.gen(function* () {
    const { document, now, request } = input
    const lock = yield* checkKey(document, now, input.keyHash)
    const balances = new Map<string, Balance>(document.balances.map((b) => [b.currencyCode, b]))
    const changes: Array<Change> = []
    const thresholds: Array<ThresholdRecord> = []
    const limits = new Map<string, ResourceLimits>((document.limits ?? []).map((l) => [l.currencyCode, l]))
    for (const m of request.modifications) {
      const { currencyCode, value: delta } = m.changeAmount
      const before = balances.get(currencyCode)?.value ?? 0
      const after = before + delta
      if (!Number.isSafeInteger(after)) {
        return yield* Either.left(
          new AmountOutOfRange({ detail: `${currencyCode} credit would leave the safe integer range` }),
        )
      }
      if (delta < 0) {
        const { minimum, limited, describe } = minimumCredit(document, currencyCode, now)
        if (minimum !== null && after < minimum) {
          const detail = `${currencyCode} credit ${before} cannot be lowered by ${-delta}: ${describe}`
          return yield* Either.left(limited ? new CreditLimitExceeded({ detail }) : new InsufficientCredit({ detail }))
        }
      }
      balances.set(currencyCode, { currencyCode, value: after, updatedAt: now })
      changes.push({ currencyCode, delta, before, after })
      const record = limitsFor(document, currencyCode)
      if (record !== undefined) {
        const evaluated = evaluateThresholds(record, previouslyReached(record, now, before), now, after)
        limits.set(currencyCode, evaluated.limits)
        thresholds.push(...evaluated.crossed)
      }
    }
    const nextBalances = [...balances.values()]
    const seq = document.journalSeq + 1
    const entry: JournalEntry = {
      id: input.entryId,
      seq,
      at: now,
      holder: document.ref,
      kind: "modification",
      reason: request.reason,
      ...(request.reference === undefined ? {} : { reference: request.reference }),
      fingerprint: input.fingerprint,
      ...(lock.token === undefined ? {} : { lockToken: lock.token }),
      changes,
      balances: nextBalances,
      ...(thresholds.length > 0 ? { thresholds } : {}),
    }
    const next: HolderDocument = {
      ...document,
      balances: nextBalances,
      journalSeq: seq,
      ...(document.limits === undefined ? {} : { limits: [...limits.values()] }),
    }
    return { document: next, entry }
  })

/**
 * A reference that was already used on this holder: the same request replays the original
 * entry; a different one → IdempotencyConflict.
 */
export const decideReplay = (
  original: JournalEntry,
  requestFingerprint: string,
): Either.Either<JournalEntry, IdempotencyConflict> =>
  original.fingerprint === requestFingerprint
    ? Either.right(original)
    : Either.left(
        new IdempotencyConflict({
          detail: `reference "${original.reference ?? ""}" was already used for a different request on this holder`,
        }),
      )

/** The result recorded by a modification's journal entry (a replay, or a proven lost reply). */
export const resultOf = (balanceGroupId: string | null, entry: JournalEntry, replayed: boolean): ModifyResult => ({
  holder: entry.holder,
  balanceGroupId,
  current: { credit: toCredit(entry.balances ?? []) },
  entryId: entry.id,
  replayed,
  events: thresholdEvents(entry),
})

/**
 * A modification under the lock whose key hash is `keyHash`; `entryId` is minted once per call
 * and is the witness. With a reference, an entry already recorded under it replays (same
 * request) or refuses (IdempotencyConflict).
 */
export const modifyTransaction = (
  ref: HolderRef,
  keyHash: string,
  request: ModifyRequest,
  entryId: string,
): Transaction<
  ModifyResult,
  | HolderNotFound
  | IdempotencyConflict
  | LockNotHeld
  | LockKeyMismatch
  | LockExpired
  | AmountOutOfRange
  | InsufficientCredit
  | CreditLimitExceeded
> => {
  const print = fingerprint(request)
  return {
    ref,
    witness: { _tag: "Entry", id: entryId },
    reference: request.reference,
    plan: ({ stored, referenced }, now) =>
      Either.gen(function* () {
        const { document } = yield* requireOpen(ref, stored)
        if (referenced !== null) {
          const original = yield* decideReplay(referenced, print)
          return { result: resultOf(document.balanceGroupId, original, true), events: [] }
        }
        const decision = yield* decideModify({ document, now, keyHash, request, fingerprint: print, entryId })
        const events = thresholdEvents(decision.entry)
        return {
          result: { ...view(decision.document), entryId, replayed: false, events },
          write: {
            document: decision.document,
            entries: [decision.entry],
            index: entryIndexKeys([decision.entry]),
            claims: [],
          },
          events,
        }
      }),
    landed: ({ stored, entry, sent }) => {
      const result = entry === null ? sent.result : resultOf(stored.document.balanceGroupId, entry, false)
      return { result, events: result.events }
    },
  }
}
