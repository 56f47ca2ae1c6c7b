/**
 * Currencies from ISO 4217: alphabetic codes, numeric codes (BRM's `resourceId`) and minor-unit
 * digits, all from one maintained source, the `currency-codes` package (ISO's "list one" of
 * current codes; see {@link ISO_4217_PUBLISHED}).
 *
 * A *currency* here is a list-one entry used by at least one country or territory: precious
 * metals (XAU, …), bond-market units, the testing code (XTS), "no currency" (XXX) and the units
 * of account of supranational bodies — the IMF's SDR (XDR), the Sucre (XSU) and the African
 * Development Bank's unit (XUA) — are listed by ISO but are not currencies a credit can be held
 * in. The fund codes ISO lists for a country (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW) are
 * accepted: they are units billing systems in those countries do account in (Chile's CLF, say).
 *
 * @module
 */
import currencyCodes from "currency-codes"
import { Either, Option, Schema } from "effect"

/** One ISO 4217 currency: alphabetic code, numeric code and the digits of its minor unit. */
export interface CurrencyInfo {
  readonly code: string
  readonly numeric: number
  readonly digits: number
  readonly name: string
}

/** Units of account that ISO lists under a supranational body rather than a country. */
const supranationalUnits: ReadonlySet<string> = new Set(["XDR", "XSU", "XUA"])

const currencies: ReadonlyArray<CurrencyInfo> = currencyCodes.data
  // ISO lists metals, bond-market units, test and "no currency" codes under pseudo-entities "ZZnn_…".
  .filter((c) => !supranationalUnits.has(c.code) && c.countries.some((country) => !/^zz\d/i.test(country)))
  .map((c) => ({ code: c.code, numeric: Number(c.number), digits: c.digits, name: c.currency }))

const byCode: ReadonlyMap<string, CurrencyInfo> = new Map(currencies.map((c) => [c.code, c]))
const byNumeric: ReadonlyMap<number, CurrencyInfo> = new Map(currencies.map((c) => [c.numeric, c]))
const listedNumeric: ReadonlySet<number> = new Set(currencyCodes.data.map((c) => Number(c.number)))

/** The publication date of the ISO 4217 list the currency data comes from. */
export const ISO_4217_PUBLISHED: string = currencyCodes.publishDate

/** Whether `code` is an active ISO 4217 currency code (upper case, e.g. `"GBP"`). */
export const isActiveCurrency = (code: string): boolean => byCode.has(code)

/** The currency with this alphabetic code. */
export const currencyByCode = (code: string): Option.Option<CurrencyInfo> => Option.fromNullable(byCode.get(code))

/** The currency with this numeric code (e.g. 840 → USD). */
export const currencyByNumeric = (numeric: number): Option.Option<CurrencyInfo> =>
  Option.fromNullable(byNumeric.get(numeric))

/** Whether ISO lists `numeric` at all (a currency, or a metal, fund unit, test code, …). */
export const isListedNumeric = (numeric: number): boolean => listedNumeric.has(numeric)

/** An active ISO 4217 alphabetic currency code such as `"GBP"`. Lower case is rejected. */
export const CurrencyCode = Schema.String.pipe(
  Schema.filter((code) => isActiveCurrency(code) || `"${code}" is not an active ISO 4217 currency code`),
  Schema.annotations({
    identifier: "CurrencyCode",
    description: "An active ISO 4217 alphabetic currency code, e.g. GBP",
  }),
)

/** An active ISO 4217 alphabetic currency code. */
export type CurrencyCode = typeof CurrencyCode.Type

/** Formats an amount in minor units as a decimal string in major units (1200 USD → "12.00"). */
export const toMajorUnits = (minor: number, currency: CurrencyInfo): string => {
  if (currency.digits === 0) return String(minor)
  const sign = minor < 0 ? "-" : ""
  const digits = String(Math.abs(minor)).padStart(currency.digits + 1, "0")
  return `${sign}${digits.slice(0, -currency.digits)}.${digits.slice(-currency.digits)}`
}

/** Why a major-unit amount could not be converted. */
export type MinorUnitsFailure = "format" | "precision" | "range"

/**
 * Converts a major-unit amount (number or decimal string, e.g. `12`, `"12.00"`, `-1`) to an
 * integer of minor units with the currency's digits. More decimals than the currency has →
 * `"precision"`; not a plain decimal → `"format"`; beyond ±(2^53 − 1) → `"range"`.
 */
export const toMinorUnits = (
  amount: number | string,
  currency: CurrencyInfo,
): Either.Either<number, MinorUnitsFailure> => {
  const text = typeof amount === "number" ? (Number.isFinite(amount) ? String(amount) : "") : amount.trim()
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text)
  if (match === null) return Either.left("format")
  const [, sign = "", whole = "0", fraction = ""] = match
  const significant = fraction.replace(/0+$/, "")
  // Trailing zeros lose nothing: "12.00" is a valid yen amount.
  if (significant.length > currency.digits) return Either.left("precision")
  const minor = BigInt(whole) * 10n ** BigInt(currency.digits) + BigInt(significant.padEnd(currency.digits, "0") || "0")
  const signed = sign === "-" ? -minor : minor
  if (signed > BigInt(Number.MAX_SAFE_INTEGER) || signed < -BigInt(Number.MAX_SAFE_INTEGER)) return Either.left("range")
  return Either.right(Number(signed))
}
