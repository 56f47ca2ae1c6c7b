/**
 * Currencies: active ISO 4217 alphabetic codes.
 *
 * The list of active codes comes from the runtime's ICU data (`Intl.supportedValuesOf("currency")`),
 * which tracks ISO 4217 and excludes withdrawn codes (DEM, VEF, …). Node 20 ships full ICU.
 *
 * @module
 */
import { Schema } from "effect"

const active: ReadonlySet<string> = new Set(Intl.supportedValuesOf("currency"))

/** Whether `code` is an active ISO 4217 alphabetic currency code (upper case, e.g. `"GBP"`). */
export const isActiveCurrency = (code: string): boolean => active.has(code)

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
