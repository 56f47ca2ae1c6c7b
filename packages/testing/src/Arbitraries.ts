/**
 * fast-check arbitraries for creditlock's inputs, in two sets: those that generate only what the
 * engine accepts (holder refs, active ISO 4217 currencies, modify requests, BRM credit-limit
 * requests with temporary limits), and those that generate only what it must reject, each value
 * paired with the error the engine answers for it.
 *
 * Both claims are proven against the engine's own validation by this package's tests (every
 * accepted value passes the engine's decoding, every rejected one fails with the error named).
 *
 * @module
 */
import {
  type CreditLimitRequestInput,
  type CurrencyInfo,
  currencyByNumeric,
  type HolderRef,
  type ModifyRequestInput,
  toMajorUnits,
} from "@creditlock/core"
import { Option } from "effect"
import fc from "fast-check"
import { activeCodes, inactiveCodes, info } from "./internal/currencies.js"

// ---------------------------------------------------------------------------------------------
// Accepted

/** Characters ids are drawn from: letters, digits, BRM punctuation (`.`, `+`, `-`, `_`) and a few others. */
const idChar = fc.constantFrom(
  ..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-_:@#=~".split(""),
  "é",
  "ß",
  "Ж",
  "中",
  "😀",
)

/** BRM-style ids, e.g. `0.0.0.1+-balance_group+82896` or `0.0.0.1+-account+123`. */
export const brmId: fc.Arbitrary<string> = fc
  .tuple(
    fc.integer({ min: 0, max: 9 }),
    fc.constantFrom("balance_group", "account", "service", "billinfo"),
    fc.integer({ min: 1, max: 999_999_999 }),
  )
  .map(([db, kind, n]) => `0.0.0.${db}+-${kind}+${n}`)

/**
 * An id the engine accepts: 1–128 characters (code points) with no `/`, whitespace or control
 * characters, BRM-style ids among them.
 */
export const id: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: idChar, minLength: 1, maxLength: 40 }) },
  { weight: 2, arbitrary: brmId },
  { weight: 1, arbitrary: fc.string({ unit: idChar, minLength: 120, maxLength: 128 }) },
)

/** `"contracts"` or `"customers"`. */
export const holderType: fc.Arbitrary<HolderRef["holderType"]> = fc.constantFrom("contracts", "customers")

/** A holder ref the engine accepts. */
export const holderRef: fc.Arbitrary<HolderRef> = fc.record({ customerId: id, holderType, holderId: id })

/** An active ISO 4217 alphabetic code (the engine's own list: no metals, funds or test codes). */
export const currencyCode: fc.Arbitrary<string> = fc.constantFrom(...activeCodes)

/** Codes a billing system meets most, to make collisions (two changes of one credit) likely. */
const common = ["GBP", "EUR", "USD", "JPY", "KWD", "CHF"] as const

/** A currency code, often a common one. */
const someCurrency = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...common) },
  { weight: 1, arbitrary: currencyCode },
)

/** A change value the engine accepts: a non-zero safe integer in minor units. */
export const changeValue: fc.Arbitrary<number> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -1_000_000, max: 1_000_000 }).filter((v) => v !== 0) },
  { weight: 1, arbitrary: fc.maxSafeInteger().filter((v) => v !== 0) },
)

/** A reason the engine accepts: 1–1,000 characters, not only whitespace. */
export const reason: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom("Top-up", "Monthly bill", "Refund", "Adjustment", "Écart de caisse") },
  { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 80 }).filter((s) => s.trim().length > 0) },
  { weight: 1, arbitrary: fc.string({ minLength: 990, maxLength: 1000 }).filter((s) => s.trim().length > 0) },
)

// biome-ignore lint/suspicious/noControlCharactersInRegex: the characters a reference may not hold
const controlChars = /[\u0000-\u001f\u007f]/

/** An idempotency reference the engine accepts: 1–128 characters, no control characters. */
export const reference: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.uuid() },
  { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 128 }).filter((s) => !controlChars.test(s)) },
)

/** One monetary modification in `currencyCode`. */
export const modification = (code: fc.Arbitrary<string> = someCurrency, value: fc.Arbitrary<number> = changeValue) =>
  fc.record({
    type: fc.constant("monetary" as const),
    changeAmount: fc.record({ currencyCode: code, value }),
  })

/** Options of {@link modifyRequest}. */
export interface ModifyRequestOptions {
  /** Only credits (positive values), so no request can be refused for lack of credit. */
  readonly creditsOnly?: boolean | undefined
  /** At most this many modifications (1–10, default 3). */
  readonly maxModifications?: number | undefined
}

/**
 * A modify request the engine accepts: a reason, 1–n modifications of distinct currencies, and
 * sometimes a reference. It passes validation; whether it is applied is the holder's business
 * (a debit may be refused for lack of credit unless `creditsOnly`).
 */
export const modifyRequest = (options: ModifyRequestOptions = {}): fc.Arbitrary<ModifyRequestInput> => {
  const value = options.creditsOnly === true ? changeValue.map(Math.abs) : changeValue
  return fc
    .record(
      {
        reason,
        codes: fc.uniqueArray(someCurrency, { minLength: 1, maxLength: options.maxModifications ?? 3 }),
        values: fc.array(value, { minLength: 10, maxLength: 10 }),
        reference,
      },
      { requiredKeys: ["reason", "codes", "values"] },
    )
    .map(({ reason, codes, values, reference }) => ({
      reason,
      modifications: codes.map((currencyCode, i) => ({
        type: "monetary" as const,
        changeAmount: { currencyCode, value: values[i] ?? 1 },
      })),
      ...(reference === undefined ? {} : { reference }),
    }))
}

/** An amount in major units of `currency` as BRM sends it: a decimal string ("12.00") or a whole number. */
const majorAmount = (currency: CurrencyInfo, maxMinor = 100_000_000): fc.Arbitrary<number | string> =>
  fc.oneof(
    fc.integer({ min: 0, max: maxMinor }).map((minor) => toMajorUnits(minor, currency)),
    fc.integer({ min: 0, max: Math.floor(maxMinor / 10 ** currency.digits) }),
  )

/** A limit: an amount, or -1 (unlimited) as a number or string. */
const limitAmount = (currency: CurrencyInfo) =>
  fc.oneof({ weight: 5, arbitrary: majorAmount(currency) }, { weight: 1, arbitrary: fc.constantFrom(-1, "-1") })

const thresholdList = fc
  .uniqueArray(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 4 })
  .map((ps) => ps.sort((a, b) => a - b).join("|"))

const unit = fc.constantFrom(1, 2, 3, 4, 5)

/** Offsets that stay well inside the engine's time range for every unit. */
const offset = (min: number) => fc.integer({ min, max: 1_000 })

const instant = fc.date({
  min: new Date("2000-01-01T00:00:00Z"),
  max: new Date("2100-01-01T00:00:00Z"),
  noInvalidDate: true,
})

/** One temporary limit of `currency`: absolute `validFrom`/`validTo`, or offsets with units (BRM's form). */
export const temporaryCreditLimit = (currency: CurrencyInfo) =>
  fc.oneof(
    fc
      .tuple(limitAmount(currency), instant, fc.integer({ min: 1, max: 400 * 86_400_000 }))
      .map(([limit, from, length]) => ({
        limit,
        validFrom: from.toISOString(),
        validTo: new Date(from.getTime() + length).toISOString(),
      })),
    fc
      .record(
        {
          limit: limitAmount(currency),
          from: fc.record({ validFromOffset: offset(0), validFromUnit: unit }),
          validToOffset: offset(1),
          validToUnit: unit,
          resourceId: fc.constant(currency.numeric),
        },
        { requiredKeys: ["limit", "validToOffset", "validToUnit"] },
      )
      .map(({ from, ...rest }) => ({ ...rest, ...from })),
  )

/**
 * A BRM "credit limits for a balance group" request the engine accepts for the currency `code`
 * (default: any active currency): `resourceId` its ISO 4217 numeric code, amounts in major units
 * with at most the currency's decimals, thresholds, the override flag, and temporary limits.
 */
export const creditLimitRequest = (code: fc.Arbitrary<string> = currencyCode): fc.Arbitrary<CreditLimitRequestInput> =>
  code.chain((c) => {
    const currency = info(c)
    return fc.record(
      {
        resourceId: fc.constant(currency.numeric),
        limit: fc.oneof(limitAmount(currency), fc.constant(null)),
        floor: fc.constantFrom(0, "0", null),
        thresholds: fc.oneof(thresholdList, fc.constant(null)),
        fixedThresholds: fc.oneof(
          fc
            .uniqueArray(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 1, maxLength: 3 })
            .map((ms) => ms.map((m) => toMajorUnits(m, currency)).join("|")),
          fc.constant(null),
        ),
        overrideCreditLimit: fc.constantFrom(0, 1, null),
        dynamicFloor: fc.boolean(),
        rollUp: fc.boolean(),
        tempCreditLimit: fc.array(temporaryCreditLimit(currency), { maxLength: 3 }),
      },
      { requiredKeys: ["resourceId"] },
    )
  })

// ---------------------------------------------------------------------------------------------
// Rejected

/** A value the engine must reject, with the tag of the error it answers and why. */
export interface Rejected<A> {
  readonly value: A
  /** The error's `_tag`: `InvalidRequest` (400), `DuplicateCreditType` or `UnsupportedResource` (422). */
  readonly expected: "InvalidRequest" | "DuplicateCreditType" | "UnsupportedResource"
  readonly why: string
}

const rejected = <A>(expected: Rejected<A>["expected"], why: string, arbitrary: fc.Arbitrary<A>) =>
  arbitrary.map((value): Rejected<A> => ({ value, expected, why }))

/** Ids the engine refuses: empty, too long, or holding `/`, whitespace or a control character. */
export const invalidId: fc.Arbitrary<string> = fc.oneof(
  fc.constant(""),
  fc.string({ unit: idChar, minLength: 129, maxLength: 140 }),
  fc
    .tuple(
      fc.string({ unit: idChar, maxLength: 10 }),
      fc.constantFrom("/", " ", "\t", "\n", "\u0000", "\u007f", "\u00a0", "\u2028"),
      fc.string({ unit: idChar, maxLength: 10 }),
    )
    .map(([a, bad, b]) => `${a}${bad}${b}`),
)

/** Holder refs the engine refuses (InvalidRequest): a bad id, an unknown holder type, a missing or extra field. */
export const invalidHolderRef: fc.Arbitrary<Rejected<HolderRef>> = fc.oneof(
  rejected("InvalidRequest", "bad customerId", fc.record({ customerId: invalidId, holderType, holderId: id })),
  rejected("InvalidRequest", "bad holderId", fc.record({ customerId: id, holderType, holderId: invalidId })),
  rejected(
    "InvalidRequest",
    "unknown holderType",
    fc.record({
      customerId: id,
      holderType: fc.constantFrom("contract", "customer", "CONTRACTS", "accounts", "") as fc.Arbitrary<never>,
      holderId: id,
    }),
  ),
  rejected(
    "InvalidRequest",
    "missing holderId",
    fc.record({ customerId: id, holderType }).map((r) => r as unknown as HolderRef),
  ),
  rejected(
    "InvalidRequest",
    "unknown field",
    fc
      .tuple(holderRef, fc.constantFrom("holder_id", "type", "balanceGroupId"))
      .map(([ref, field]) => ({ ...ref, [field]: "x" }) as HolderRef),
  ),
)

/**
 * Codes the engine refuses as currencies: three letters it does not count as an active currency
 * (unknown codes, metals, test codes: the list is the engine's own, see `isActiveCurrency`), lower
 * case, or not three capital letters at all.
 */
export const invalidCurrencyCode: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...inactiveCodes),
  currencyCode.map((c) => c.toLowerCase()),
  fc.constantFrom("", "GB", "GBPX", " GBP", "GBP ", "£", "G8P"),
)

const oneChange = (currencyCode: string, value: number) => ({
  type: "monetary" as const,
  changeAmount: { currencyCode, value },
})

/**
 * Modify requests the engine refuses: InvalidRequest for a malformed one (no modifications, a
 * zero, fractional or unsafe value, an unknown currency, an empty or too long reason, a bad
 * reference, an unknown field), DuplicateCreditType for one credit changed twice.
 */
export const invalidModifyRequest: fc.Arbitrary<Rejected<ModifyRequestInput>> = fc.oneof(
  rejected(
    "InvalidRequest",
    "no modifications",
    reason.map((r) => ({ reason: r, modifications: [] })),
  ),
  rejected(
    "InvalidRequest",
    "zero, fractional or unsafe value",
    fc
      .tuple(
        reason,
        someCurrency,
        fc.oneof(
          fc.constantFrom(0, -0, 0.5, -1.25, Number.NaN, Number.POSITIVE_INFINITY),
          fc.constantFrom(2 ** 53, -(2 ** 53), 1e300),
          fc.double({ noInteger: true, noNaN: true }).filter((d) => Number.isFinite(d)),
        ),
      )
      .map(([r, c, v]) => ({ reason: r, modifications: [oneChange(c, v)] })),
  ),
  rejected(
    "InvalidRequest",
    "not an active currency",
    fc
      .tuple(reason, invalidCurrencyCode, changeValue)
      .map(([r, c, v]) => ({ reason: r, modifications: [oneChange(c, v)] })),
  ),
  rejected(
    "InvalidRequest",
    "empty or too long reason",
    fc
      .tuple(
        fc.oneof(fc.constantFrom("", " ", "\t\n"), fc.string({ minLength: 1001, maxLength: 1100 })),
        someCurrency,
        changeValue,
      )
      .map(([r, c, v]) => ({ reason: r, modifications: [oneChange(c, v)] })),
  ),
  rejected(
    "InvalidRequest",
    "bad reference",
    fc
      .tuple(
        reason,
        someCurrency,
        changeValue,
        fc.oneof(
          fc.constant(""),
          fc.string({ minLength: 129, maxLength: 200 }),
          fc
            .tuple(fc.string({ maxLength: 5 }), fc.constantFrom("\u0000", "\n", "\u001b", "\u007f"))
            .map(([a, b]) => a + b),
        ),
      )
      .map(([r, c, v, reference]) => ({ reason: r, modifications: [oneChange(c, v)], reference })),
  ),
  rejected(
    "InvalidRequest",
    "unknown field",
    fc
      .tuple(modifyRequest(), fc.constantFrom("references", "idempotencyKey", "amount"))
      .map(([request, field]) => ({ ...request, [field]: "x" }) as ModifyRequestInput),
  ),
  rejected(
    "DuplicateCreditType",
    "one credit changed twice",
    fc
      .tuple(reason, someCurrency, changeValue, changeValue, fc.array(modification(), { maxLength: 2 }))
      .map(([r, c, a, b, others]) => ({
        reason: r,
        modifications: [oneChange(c, a), ...others.filter((m) => m.changeAmount.currencyCode !== c), oneChange(c, b)],
      })),
  ),
)

const gbp = info("GBP")
const jpy = info("JPY")

/**
 * Credit-limit requests the engine refuses: UnsupportedResource for a resource that is not a
 * currency (a metal, a fund, an unlisted number); InvalidRequest for an amount with more decimals
 * than the currency has, a negative limit other than -1, a malformed amount or threshold, an
 * unknown time unit, a validity that ends before it starts, both absolute and relative ends, or
 * an override flag other than 0 or 1.
 */
export const invalidCreditLimitRequest: fc.Arbitrary<Rejected<CreditLimitRequestInput>> = fc.oneof(
  rejected(
    "UnsupportedResource",
    "resource is not a currency",
    fc
      .oneof(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 1_000, max: 1_000_000 }))
      // The engine's own notion of a currency resource decides what is left out.
      .filter((resourceId) => Option.isNone(currencyByNumeric(resourceId)))
      .map((resourceId) => ({ resourceId, limit: "10.00" })),
  ),
  rejected(
    "InvalidRequest",
    "more decimals than the currency has",
    fc.oneof(
      fc.integer({ min: 0, max: 10_000 }).map((n) => ({
        resourceId: gbp.numeric,
        limit: `${n}.${String(n % 1000)
          .padStart(3, "0")
          .replace(/0$/, "1")}`,
      })),
      fc.integer({ min: 0, max: 10_000 }).map((n) => ({ resourceId: jpy.numeric, limit: `${n}.5` })),
    ),
  ),
  rejected(
    "InvalidRequest",
    "negative limit other than -1",
    fc.integer({ min: 2, max: 1_000_000 }).map((n) => ({ resourceId: gbp.numeric, limit: -n })),
  ),
  rejected(
    "InvalidRequest",
    "malformed amount or threshold",
    fc.oneof(
      fc.constantFrom("12,00", "abc", "1e3", "", "--1", "0x10").map((limit) => ({ resourceId: gbp.numeric, limit })),
      fc.constantFrom("0", "abc", "50|x", "1001", "-5").map((thresholds) => ({ resourceId: gbp.numeric, thresholds })),
    ),
  ),
  rejected(
    "InvalidRequest",
    "unknown time unit",
    fc.tuple(fc.constantFrom(0, 6, 7, -1, 1.5), offset(1)).map(([validToUnit, validToOffset]) => ({
      resourceId: gbp.numeric,
      tempCreditLimit: [{ limit: "5.00", validToOffset, validToUnit }],
    })),
  ),
  rejected(
    "InvalidRequest",
    "validity ends before it starts",
    fc.tuple(instant, fc.integer({ min: 0, max: 86_400_000 })).map(([to, back]) => ({
      resourceId: gbp.numeric,
      tempCreditLimit: [
        { limit: "5.00", validFrom: new Date(to.getTime() + back).toISOString(), validTo: to.toISOString() },
      ],
    })),
  ),
  rejected(
    "InvalidRequest",
    "both absolute and relative start",
    instant.map((from) => ({
      resourceId: gbp.numeric,
      tempCreditLimit: [
        {
          limit: "5.00",
          validFrom: from.toISOString(),
          validFromOffset: 1,
          validFromUnit: 4,
          validToOffset: 1,
          validToUnit: 4,
        },
      ],
    })),
  ),
  rejected(
    "InvalidRequest",
    "override flag other than 0 or 1",
    fc.constantFrom(2, -1, 0.5).map((overrideCreditLimit) => ({ resourceId: gbp.numeric, overrideCreditLimit })),
  ),
)
