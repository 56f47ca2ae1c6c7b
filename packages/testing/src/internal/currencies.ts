/**
 * The currencies the engine accepts, listed by asking the engine's own predicate about every
 * three-letter code, so the list cannot drift from the engine's.
 *
 * @internal
 */
import { type CurrencyInfo, currencyByCode, isActiveCurrency } from "@creditlock/core"
import { Option } from "effect"

const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

const all: ReadonlyArray<string> = [...letters].flatMap((a) =>
  [...letters].flatMap((b) => [...letters].map((c) => `${a}${b}${c}`)),
)

/** Every active ISO 4217 currency code, sorted. */
export const activeCodes: ReadonlyArray<string> = all.filter(isActiveCurrency)

/** Three-letter codes that are not active currencies (unknown, metals, funds, test codes …). */
export const inactiveCodes: ReadonlyArray<string> = all.filter((code) => !isActiveCurrency(code))

/** The currency of an active code. */
export const info = (code: string): CurrencyInfo =>
  Option.getOrThrowWith(currencyByCode(code), () => new Error(`${code} is not an active currency`))
