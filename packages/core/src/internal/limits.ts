/**
 * The credit-limit rules of `Limits.ts` (whose module comment states the semantics): resolving a
 * BRM request against its currency and the clock, the effective limit and minimum credit in
 * force, armed thresholds, and the transaction that sets limits. Pure: `now` is a parameter.
 *
 * @internal
 */
import { Either, Option } from "effect"
import {
  type CurrencyInfo,
  currencyByCode,
  currencyByNumeric,
  isListedNumeric,
  toMajorUnits,
  toMinorUnits,
} from "../Currency.js"
import type { HolderNotFound } from "../Errors.js"
import { AmountOutOfRange, InvalidRequest, UnsupportedResource } from "../Errors.js"
import type { ThresholdCrossed } from "../Events.js"
import type { HolderDocument, HolderRef } from "../Holder.js"
import type { JournalEntry } from "../Journal.js"
import type {
  CreditLimitRequest,
  CreditLimitsView,
  LimitAmount,
  ReachedThresholds,
  ResourceLimits,
  ResourceLimitsView,
  TemporaryLimit,
  ThresholdRecord,
} from "../Limits.js"
import { requireOpen } from "./holder.js"
import { thresholdEvents } from "./journal.js"
import type { Transaction } from "./plan.js"

/** A request resolved against the currency and the clock: what to change, in minor units. */
export interface LimitChange {
  readonly currency: CurrencyInfo
  readonly limit?: LimitAmount
  readonly floor?: number
  readonly thresholds?: ReadonlyArray<number>
  readonly fixedThresholds?: ReadonlyArray<number>
  readonly overrideCreditLimit?: boolean
  readonly dynamicFloor?: boolean
  readonly rollUp?: boolean
  readonly extension?: unknown
  readonly temporary?: ReadonlyArray<TemporaryLimit>
}

type ResolveError = InvalidRequest | UnsupportedResource | AmountOutOfRange

/** One entry of a decoded request's `tempCreditLimit`. */
type TemporaryLimitInput = NonNullable<CreditLimitRequest["tempCreditLimit"]>[number]

const invalid = (detail: string) => Either.left(new InvalidRequest({ detail }))

const isUnlimited = (amount: number | string) =>
  typeof amount === "number" ? amount === -1 : /^\s*-1(\.0+)?\s*$/.test(amount)

/** A major-unit amount in minor units of `currency`. */
const minorUnits = (
  field: string,
  amount: number | string,
  currency: CurrencyInfo,
): Either.Either<number, ResolveError> =>
  Either.mapLeft(toMinorUnits(amount, currency), (failure) => {
    switch (failure) {
      case "format":
        return new InvalidRequest({ detail: `${field}: ${JSON.stringify(amount)} is not a decimal amount` })
      case "precision":
        return new InvalidRequest({
          detail: `${field}: ${JSON.stringify(amount)} has more decimal places than ${currency.code} (${currency.digits})`,
        })
      case "range":
        return new AmountOutOfRange({ detail: `${field}: ${JSON.stringify(amount)} is outside the safe integer range` })
    }
  })

/** A limit: `-1` is unlimited, otherwise an amount ≥ 0. */
const limitAmount = (
  field: string,
  amount: number | string,
  currency: CurrencyInfo,
): Either.Either<LimitAmount, ResolveError> =>
  isUnlimited(amount)
    ? Either.right("unlimited")
    : Either.flatMap(minorUnits(field, amount, currency), (minor) =>
        minor < 0 ? invalid(`${field}: must be -1 (unlimited) or at least 0`) : Either.right(minor),
      )

const splitList = (text: string): ReadonlyArray<string> =>
  text.trim() === "" ? [] : text.split("|").map((part) => part.trim())

const ascendingUnique = (values: ReadonlyArray<number>) => [...new Set(values)].sort((a, b) => a - b)

const percentages = (text: string): Either.Either<ReadonlyArray<number>, ResolveError> =>
  Either.map(
    Either.all(
      splitList(text).map((part) => {
        const value = Number(part)
        return /^\d+(\.\d+)?$/.test(part) && value > 0 && value <= 1000
          ? Either.right(value)
          : invalid(`thresholds: "${part}" is not a percentage between 0 (exclusive) and 1000`)
      }),
    ),
    ascendingUnique,
  )

const fixedAmounts = (text: string, currency: CurrencyInfo): Either.Either<ReadonlyArray<number>, ResolveError> =>
  Either.map(Either.all(splitList(text).map((part) => minorUnits("fixedThresholds", part, currency))), ascendingUnique)

const UNIT_MILLIS: Record<number, number> = { 1: 1_000, 2: 60_000, 3: 3_600_000, 4: 86_400_000 }

/** `from` plus `offset` units (1 s, 2 min, 3 h, 4 days, 5 calendar months, clamped to month end; UTC). */
export const addUnits = (from: number, offset: number, unit: number): number => {
  const millis = UNIT_MILLIS[unit]
  if (millis !== undefined) return from + offset * millis
  const date = new Date(from)
  const day = date.getUTCDate()
  date.setUTCDate(1)
  date.setUTCMonth(date.getUTCMonth() + offset)
  const lastDay = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 0)).getUTCDate()
  date.setUTCDate(Math.min(day, lastDay))
  return date.getTime()
}

const dateTimePattern = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|([+-])(\d{2}):?(\d{2}))$/

const daysInMonth = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate()

/**
 * An ISO 8601 date-time with a zone, read strictly: real calendar values only (no 30 February, no
 * `T24:00`, no leap second, offsets within ±23:59), never normalised into another instant.
 */
export const parseInstant = (text: string): number | null => {
  const m = dateTimePattern.exec(text)
  if (m === null) return null
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? "0"].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ]
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null
  if (hour > 23 || minute > 59 || second > 59) return null
  if (m[8] !== "Z" && (Number(m[10]) > 23 || Number(m[11]) > 59)) return null
  const ms = Date.parse(text)
  return Number.isNaN(ms) ? null : ms
}

const instant = (field: string, text: string): Either.Either<number, ResolveError> => {
  const ms = parseInstant(text)
  return ms === null
    ? invalid(`${field}: "${text}" is not a valid date-time with a time zone (ISO 8601, e.g. 2026-03-01T00:00:00Z)`)
    : Either.right(ms)
}

/** One end of a validity period: absolute, relative to `base`, or `fallback` when neither is given. */
const validityEnd = (
  field: "validFrom" | "validTo",
  absolute: string | null | undefined,
  offset: number | null | undefined,
  unit: number | null | undefined,
  base: number,
  fallback: number | null,
): Either.Either<number, ResolveError> => {
  const relative = (offset ?? null) !== null || (unit ?? null) !== null
  if ((absolute ?? null) !== null && relative)
    return invalid(`${field}: give either ${field} or ${field}Offset/${field}Unit, not both`)
  if (absolute !== null && absolute !== undefined) return instant(field, absolute)
  if (!relative)
    return fallback === null
      ? invalid(`${field}: give ${field} or ${field}Offset with ${field}Unit`)
      : Either.right(fallback)
  if (offset === null || offset === undefined || !Number.isSafeInteger(offset) || offset < 0) {
    return invalid(`${field}Offset: must be an integer ≥ 0`)
  }
  if (unit === null || unit === undefined || ![1, 2, 3, 4, 5].includes(unit)) {
    return invalid(`${field}Unit: must be 1 (seconds), 2 (minutes), 3 (hours), 4 (days) or 5 (months)`)
  }
  const end = addUnits(base, offset, unit)
  return Number.isFinite(end) && Math.abs(end) <= 8.64e15
    ? Either.right(end)
    : invalid(`${field}Offset: too far in time`)
}

const temporaryLimit = (
  t: TemporaryLimitInput,
  i: number,
  resourceId: number,
  currency: CurrencyInfo,
  now: number,
): Either.Either<TemporaryLimit, ResolveError> =>
  Either.gen(function* () {
    const at = `tempCreditLimit[${i}]`
    if (t.resourceId !== undefined && t.resourceId !== null && t.resourceId !== resourceId) {
      return yield* invalid(`${at}.resourceId: ${t.resourceId} differs from the request's resourceId ${resourceId}`)
    }
    const limit = yield* limitAmount(`${at}.limit`, t.limit, currency)
    const validFrom = yield* validityEnd("validFrom", t.validFrom, t.validFromOffset, t.validFromUnit, now, now)
    const validTo = yield* validityEnd("validTo", t.validTo, t.validToOffset, t.validToUnit, validFrom, null)
    if (validTo <= validFrom) return yield* invalid(`${at}: validTo must be after validFrom`)
    return { limit, validFrom, validTo }
  })

/**
 * Resolves a request at `now`: the resource must be an ISO 4217 currency (else
 * UnsupportedResource), amounts are converted with the currency's digits (too many decimals →
 * InvalidRequest), relative validities are computed from `now`.
 */
export const resolveLimitRequest = (
  request: CreditLimitRequest,
  now: number,
): Either.Either<LimitChange, ResolveError> =>
  Either.gen(function* () {
    const { resourceId } = request
    const currency = yield* Either.fromOption(currencyByNumeric(resourceId), () =>
      isListedNumeric(resourceId)
        ? new UnsupportedResource({
            detail: `resource ${resourceId} is not a currency; only currency resources (ISO 4217 numeric codes of currencies) are supported`,
          })
        : new UnsupportedResource({ detail: `resource ${resourceId} is not an ISO 4217 currency` }),
    )
    const change: { -readonly [K in keyof LimitChange]: LimitChange[K] } = { currency }
    if (request.limit !== undefined && request.limit !== null)
      change.limit = yield* limitAmount("limit", request.limit, currency)
    if (request.floor !== undefined && request.floor !== null)
      change.floor = yield* minorUnits("floor", request.floor, currency)
    if (request.thresholds !== undefined && request.thresholds !== null)
      change.thresholds = yield* percentages(request.thresholds)
    if (request.fixedThresholds !== undefined && request.fixedThresholds !== null) {
      change.fixedThresholds = yield* fixedAmounts(request.fixedThresholds, currency)
    }
    if (request.overrideCreditLimit !== undefined && request.overrideCreditLimit !== null) {
      if (request.overrideCreditLimit !== 0 && request.overrideCreditLimit !== 1) {
        return yield* invalid("overrideCreditLimit: must be 0 (enforce) or 1 (override)")
      }
      change.overrideCreditLimit = request.overrideCreditLimit === 1
    }
    if (request.dynamicFloor !== undefined && request.dynamicFloor !== null) change.dynamicFloor = request.dynamicFloor
    if (request.rollUp !== undefined && request.rollUp !== null) change.rollUp = request.rollUp
    if (request.extension !== undefined && request.extension !== null) change.extension = request.extension
    if (request.tempCreditLimit !== undefined && request.tempCreditLimit !== null) {
      change.temporary = yield* Either.all(
        request.tempCreditLimit.map((t, i) => temporaryLimit(t, i, resourceId, currency, now)),
      )
    }
    return change
  })

/** The larger of two limits; unlimited dominates. */
const higher = (a: LimitAmount, b: LimitAmount): LimitAmount =>
  a === "unlimited" || b === "unlimited" ? "unlimited" : Math.max(a, b)

/** The effective limit at `now`: the highest of the regular limit (0 if unset) and every active temporary limit. */
export const effectiveLimit = (limits: ResourceLimits, now: number): LimitAmount =>
  limits.temporary.reduce<LimitAmount>(
    (best, t) => (t.validFrom <= now && now < t.validTo ? higher(best, t.limit) : best),
    limits.limit ?? 0,
  )

/** The limits record of a currency, if the holder has one. */
export const limitsFor = (document: HolderDocument, currencyCode: string): ResourceLimits | undefined =>
  document.limits?.find((l) => l.currencyCode === currencyCode)

/** The minimum credit a debit may leave in a currency, and whether a credit limit decided it. */
export interface MinimumCredit {
  /** The lowest value a debit may leave; `null` when nothing is enforced. */
  readonly minimum: number | null
  /** True when a credit-limit record applies (a breach is CreditLimitExceeded, not InsufficientCredit). */
  readonly limited: boolean
  readonly describe: string
}

const describeAmount = (minor: number, currencyCode: string) =>
  Option.match(currencyByCode(currencyCode), {
    onNone: () => `${minor}`,
    onSome: (c) => `${toMajorUnits(minor, c)} ${c.code}`,
  })

/** The minimum credit in force at `now`: 0 without a limit record, −(effective limit) with one. */
export const minimumCredit = (document: HolderDocument, currencyCode: string, now: number): MinimumCredit => {
  const limits = limitsFor(document, currencyCode)
  if (limits === undefined) return { minimum: 0, limited: false, describe: "no credit limit applies (minimum 0)" }
  if (limits.overrideCreditLimit) return { minimum: null, limited: true, describe: "the credit limit is overridden" }
  const effective = effectiveLimit(limits, now)
  // A record that only carries thresholds (no regular limit ever set, no temporary one in force)
  // leaves the holder as one without a credit limit.
  if (limits.limit === null && !limits.temporary.some((t) => t.validFrom <= now && now < t.validTo)) {
    return { minimum: 0, limited: false, describe: "no credit limit applies (minimum 0)" }
  }
  if (effective === "unlimited") return { minimum: null, limited: true, describe: "the credit limit is unlimited" }
  return {
    minimum: -effective,
    limited: true,
    describe: `the credit limit in force is ${describeAmount(effective, currencyCode)} (minimum credit ${describeAmount(-effective, currencyCode)})`,
  }
}

/** The consumption at which a percentage threshold is reached, or null when it has no meaning. */
const percentagePoint = (floor: number, effective: LimitAmount, percent: number): number | null =>
  effective === "unlimited" || effective - floor <= 0 ? null : floor + (percent * (effective - floor)) / 100

/** The thresholds that consumption (−`credit`) reaches at `now`, with the limits in force then. */
export const reachedAt = (limits: ResourceLimits, now: number, credit: number): ReachedThresholds => {
  const used = -credit
  const effective = effectiveLimit(limits, now)
  return {
    percentage: limits.thresholds.filter((p) => {
      const point = percentagePoint(limits.floor, effective, p)
      return point !== null && used >= point
    }),
    fixed: limits.fixedThresholds.filter((f) => used >= f),
  }
}

/** What evaluating thresholds after a change found: the limits with their new state, and what fired. */
export interface ThresholdEvaluation {
  readonly limits: ResourceLimits
  readonly crossed: ReadonlyArray<ThresholdRecord>
}

/**
 * Evaluates the armed thresholds of `limits` after a change leaves the credit at `credit`:
 * every threshold reached now that was not reached before (`previous`) fires once; the reached
 * set is stored, so thresholds no longer reached re-arm.
 */
export const evaluateThresholds = (
  limits: ResourceLimits,
  previous: ReachedThresholds,
  now: number,
  credit: number,
): ThresholdEvaluation => {
  const reached = reachedAt(limits, now, credit)
  const effective = effectiveLimit(limits, now)
  const record = (kind: ThresholdRecord["kind"], threshold: number): ThresholdRecord => ({
    currencyCode: limits.currencyCode,
    kind,
    threshold,
    consumption: -credit,
    effectiveLimit: effective,
  })
  const crossed = [
    ...reached.percentage.filter((p) => !previous.percentage.includes(p)).map((p) => record("percentage", p)),
    ...reached.fixed.filter((f) => !previous.fixed.includes(f)).map((f) => record("fixed", f)),
  ]
  return { limits: { ...limits, reached }, crossed }
}

/** The reached set before a change: as stored, or (for records older than arming) as found then. */
export const previouslyReached = (limits: ResourceLimits, now: number, creditBefore: number): ReachedThresholds =>
  limits.reached ?? reachedAt(limits, now, creditBefore)

/** Limits of a currency that was never configured. */
const initialLimits = (currency: CurrencyInfo, now: number): ResourceLimits => ({
  resourceId: currency.numeric,
  currencyCode: currency.code,
  limit: null,
  floor: 0,
  thresholds: [],
  fixedThresholds: [],
  overrideCreditLimit: false,
  dynamicFloor: null,
  rollUp: null,
  extension: null,
  temporary: [],
  updatedAt: now,
})

/** Applies a change to (possibly absent) limits: given fields replace, absent ones are kept. */
export const applyLimitChange = (
  current: ResourceLimits | undefined,
  change: LimitChange,
  now: number,
): ResourceLimits => {
  const base = current ?? initialLimits(change.currency, now)
  return {
    ...base,
    limit: change.limit ?? base.limit,
    floor: change.floor ?? base.floor,
    thresholds: change.thresholds ?? base.thresholds,
    fixedThresholds: change.fixedThresholds ?? base.fixedThresholds,
    overrideCreditLimit: change.overrideCreditLimit ?? base.overrideCreditLimit,
    dynamicFloor: change.dynamicFloor ?? base.dynamicFloor,
    rollUp: change.rollUp ?? base.rollUp,
    extension: change.extension === undefined ? base.extension : change.extension,
    temporary: change.temporary ?? base.temporary,
    updatedAt: now,
  }
}

/** What setting limits commits: the next document and its journal entry (with any crossings). */
export interface SetLimitsDecision {
  readonly document: HolderDocument
  readonly entry: JournalEntry
  readonly limits: ResourceLimits
}

/**
 * Sets the limits of one currency of a holder, journaling the change and any armed threshold the
 * change finds reached. Thresholds the change configures anew start as they are found.
 */
export const decideSetLimits = (
  document: HolderDocument,
  change: LimitChange,
  now: number,
  entryId: string,
): SetLimitsDecision => {
  const code = change.currency.code
  const before = limitsFor(document, code)
  const next = applyLimitChange(before, change, now)
  const credit = document.balances.find((b) => b.currencyCode === code)?.value ?? 0
  const foundNow = reachedAt(next, now, credit)
  const earlier = before === undefined ? { percentage: [], fixed: [] } : previouslyReached(before, now, credit)
  const configured = (kind: "percentage" | "fixed", t: number) =>
    before !== undefined && (kind === "percentage" ? before.thresholds : before.fixedThresholds).includes(t)
  // A threshold that is new to the record counts as reached already if it is reached now: no event.
  const previous: ReachedThresholds = {
    percentage: [...earlier.percentage, ...foundNow.percentage.filter((p) => !configured("percentage", p))],
    fixed: [...earlier.fixed, ...foundNow.fixed.filter((f) => !configured("fixed", f))],
  }
  const { limits: after, crossed } = evaluateThresholds(next, previous, now, credit)
  const others = (document.limits ?? []).filter((l) => l.currencyCode !== code)
  const seq = document.journalSeq + 1
  const entry: JournalEntry = {
    id: entryId,
    seq,
    at: now,
    holder: document.ref,
    kind: "limits",
    changes: [],
    limits: { before: before ?? null, after },
    ...(crossed.length > 0 ? { thresholds: crossed } : {}),
  }
  return { document: { ...document, limits: [...others, after], journalSeq: seq }, entry, limits: after }
}

/** The limits of every currency of a holder, with the effective limit at `now`. */
export const viewLimits = (document: HolderDocument, now: number): ReadonlyArray<ResourceLimitsView> =>
  (document.limits ?? []).map((l) => ({
    ...l,
    effectiveLimit: effectiveLimit(l, now),
    minimumCredit: minimumCredit(document, l.currencyCode, now).minimum,
  }))

/** The limits of a stored holder as shown to callers at `now`. */
export const limitsView = (
  document: HolderDocument,
  now: number,
  events: ReadonlyArray<ThresholdCrossed>,
): CreditLimitsView => ({
  holder: document.ref,
  balanceGroupId: document.balanceGroupId,
  at: new Date(now),
  limits: viewLimits(document, now),
  events,
})

/**
 * Sets one currency's limits of the holder `ref` from a decoded BRM request, resolved at the
 * moment of each attempt (relative validities count from it); `entryId` is minted once per call.
 */
export const setLimitsTransaction = (
  ref: HolderRef,
  request: CreditLimitRequest,
  entryId: string,
): Transaction<CreditLimitsView, HolderNotFound | ResolveError> => ({
  ref,
  witness: { _tag: "Entry", id: entryId },
  plan: ({ stored }, now) =>
    Either.gen(function* () {
      const { document } = yield* requireOpen(ref, stored)
      const change = yield* resolveLimitRequest(request, now)
      const decision = decideSetLimits(document, change, now, entryId)
      const events = thresholdEvents(decision.entry)
      return {
        result: limitsView(decision.document, now, events),
        write: {
          document: decision.document,
          entries: [decision.entry],
          index: [{ kind: "order" as const, value: entryId }],
          claims: [],
        },
        events,
      }
    }),
  landed: ({ stored, entry, now }) => {
    const events = entry === null ? [] : thresholdEvents(entry)
    return { result: limitsView(stored.document, now, events), events }
  },
})
