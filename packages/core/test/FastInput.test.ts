import { describe, expect, it } from "@effect/vitest"
import { Either, ParseResult, type Schema } from "effect"
import fc from "fast-check"
import { HolderRef } from "../src/Holder.js"
import { fastKey, fastLockOptions, fastModify, fastRef, LockOptionsSchema } from "../src/internal/fastInput.js"
import { LockKeyText } from "../src/internal/schemas.js"
import { ModifyRequest } from "../src/Modification.js"

/**
 * Whenever a fast check answers, the schema (as the engine decodes: excess properties refused)
 * accepts the same input and decodes it to the same value; and on inputs built valid, the fast
 * check does answer (it is not a check that always defers).
 */
const agrees = <A, I>(
  schema: Schema.Schema<A, I>,
  fast: (input: unknown) => A | undefined,
  input: unknown,
): "fast" | "schema" => {
  const decoded = ParseResult.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(input)
  const checked = fast(input)
  if (checked === undefined) return "schema"
  expect(Either.isRight(decoded), `the schema refuses what the fast check accepted: ${fc.stringify(input)}`).toBe(true)
  expect(checked).toStrictEqual(Either.getOrThrow(decoded))
  return "fast"
}

// Characters around every rule: '/', whitespace, control characters, astral code points, quotes.
const tricky = fc.constantFrom(
  "a",
  "Z",
  "0",
  "/",
  " ",
  "\t",
  "\n",
  "\u0000",
  "\u007f",
  "\u0085",
  "\u00a0",
  "😀",
  "\ud800",
  "é",
  "+",
  ".",
  "-",
  "_",
)
const text = fc.oneof(
  fc.string({ unit: tricky, maxLength: 140 }),
  fc.string({ minLength: 120, maxLength: 300 }),
  fc.string({ unit: "grapheme", maxLength: 130 }),
  fc.constant(""),
)
const validId = fc.stringMatching(/^[A-Za-z0-9.+_-]{1,128}$/)
const id = fc.oneof(
  validId,
  text,
  fc.constant("x".repeat(128)),
  fc.constant("😀".repeat(64)),
  fc.constant("😀".repeat(129)),
)
const junk = fc.oneof(fc.anything(), fc.constant(undefined), fc.constant(null), fc.integer(), fc.constant([]))

/** An object with the given fields, maybe with one dropped, one extra, a null prototype or a class. */
const shaped = (fields: fc.Arbitrary<Record<string, unknown>>) =>
  fc
    .tuple(
      fields,
      fc.constantFrom("as is", "drop", "extra", "symbol", "null proto", "class", "undefined extra", "array"),
      fc.nat(),
    )
    .map(([record, how, n]) => {
      const keys = Object.keys(record)
      switch (how) {
        case "as is":
          return record
        case "drop": {
          const copy = { ...record }
          const key = keys[n % Math.max(keys.length, 1)]
          if (key !== undefined) delete copy[key]
          return copy
        }
        case "extra":
          return { ...record, extra: 1 }
        case "undefined extra":
          return { ...record, reference: undefined }
        case "symbol":
          return { ...record, [Symbol("s")]: 1 }
        case "null proto":
          return Object.assign(Object.create(null), record)
        case "class":
          return Object.assign(new (class Input {})(), record)
        case "array":
          return Object.assign([], record)
      }
      return record
    })

const ref = shaped(
  fc.record({
    customerId: fc.oneof(id, junk),
    holderType: fc.oneof(fc.constantFrom("contracts", "customers", "contract", "Customers", ""), junk),
    holderId: fc.oneof(id, junk),
  }),
)
const validRef = fc.record({
  customerId: validId,
  holderType: fc.constantFrom("contracts", "customers"),
  holderId: validId,
})

const value = fc.oneof(
  fc.integer({ min: -1_000_000, max: 1_000_000 }),
  fc.constantFrom(0, -0, 1.5, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 53, Number.NaN, Infinity),
  junk,
)
const modification = shaped(
  fc.record({
    type: fc.oneof(fc.constantFrom("monetary", "Monetary", "points"), junk),
    changeAmount: fc.oneof(
      shaped(
        fc.record({
          currencyCode: fc.oneof(fc.constantFrom("GBP", "USD", "JPY", "gbp", "XAU", "XDR", "CLF", ""), junk),
          value,
        }),
      ),
      junk,
    ),
  }),
)
const modifications = fc.oneof(
  fc.array(modification, { maxLength: 4 }),
  fc.array(modification, { maxLength: 3 }).map((a) => {
    const holey = [...a]
    holey.length = a.length + 1
    return holey
  }),
  junk,
)
const reason = fc.oneof(
  fc.constantFrom("bench", " ", "", "\t\n", "x".repeat(1000), "x".repeat(1001), "😀".repeat(500), "😀".repeat(501)),
  text,
  junk,
)
const reference = fc.oneof(
  fc.constantFrom("r-1", "", "x".repeat(128), "x".repeat(129), "a\u0000b", "a\u007fb"),
  text,
  junk,
)
const request = fc.oneof(
  shaped(fc.record({ reason, modifications })),
  shaped(fc.record({ reason, modifications, reference })),
)
/** Well-formed requests whose every leaf may break a rule. */
const leafy = fc.record(
  {
    reason,
    modifications: fc.array(
      fc.record({
        type: fc.constantFrom("monetary", "points"),
        changeAmount: fc.record({
          currencyCode: fc.constantFrom("GBP", "USD", "JPY", "gbp", "XAU", "XDR", "XTS", "CLF", "", "GBPX"),
          value,
        }),
      }),
      { minLength: 0, maxLength: 3 },
    ),
    reference,
  },
  { requiredKeys: ["reason", "modifications"] },
)
const validRequest = fc.record(
  {
    reason: fc.stringMatching(/^[a-z][a-z ]{0,40}$/),
    modifications: fc.array(
      fc.record({
        type: fc.constant("monetary" as const),
        changeAmount: fc.record({
          currencyCode: fc.constantFrom("GBP", "USD", "EUR", "JPY"),
          value: fc.integer({ min: 1, max: 10_000 }).chain((v) => fc.constantFrom(v, -v)),
        }),
      }),
      { minLength: 1, maxLength: 3 },
    ),
    reference: fc.stringMatching(/^[a-z0-9-]{1,40}$/),
  },
  { requiredKeys: ["reason", "modifications"] },
)

describe("fast input checks accept only what the schemas accept, decoded alike", () => {
  it("holder refs", () => {
    fc.assert(
      fc.property(fc.oneof(ref, junk), (input) => void agrees(HolderRef, fastRef, input)),
      { numRuns: 3000 },
    )
    fc.assert(
      fc.property(validRef, (input) => {
        expect(agrees(HolderRef, fastRef, input)).toBe("fast")
      }),
    )
  })

  it("modify requests", () => {
    fc.assert(
      fc.property(fc.oneof(request, leafy, junk), (input) => void agrees(ModifyRequest, fastModify, input)),
      {
        numRuns: 3000,
      },
    )
    fc.assert(
      fc.property(validRequest, (input) => {
        expect(agrees(ModifyRequest, fastModify, input)).toBe("fast")
      }),
    )
  })

  it("lock keys and lock options", () => {
    fc.assert(
      fc.property(fc.oneof(text, junk), (input) => void agrees(LockKeyText, fastKey, input)),
      { numRuns: 2000 },
    )
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9_-]{1,256}$/), (key) => {
        expect(agrees(LockKeyText, fastKey, key)).toBe("fast")
      }),
    )
    fc.assert(
      fc.property(
        fc.oneof(shaped(fc.record({ reference })), fc.constant({}), junk),
        (input) => void agrees(LockOptionsSchema, fastLockOptions, input),
      ),
      { numRuns: 1000 },
    )
    expect(agrees(LockOptionsSchema, fastLockOptions, {})).toBe("fast")
  })
})
