/**
 * The field schemas the public request schemas are built from: ids, reasons, idempotency
 * references and change values. Callers reach them through those schemas (`HolderRef.fields`,
 * `ModifyRequest.fields`), so each rule is written once.
 *
 * @internal
 */
import { Schema } from "effect"

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

/** A change of credit in a currency's minor unit: a non-zero safe integer (positive adds credit). */
export const ChangeValue = Schema.Number.pipe(
  Schema.filter((v) => (Number.isSafeInteger(v) && v !== 0) || "must be a non-zero safe integer (minor units)"),
  Schema.annotations({ identifier: "ChangeValue" }),
)

/** Reason text: non-empty (not only whitespace), at most 1,000 characters. */
export const Reason = Schema.String.pipe(
  Schema.filter((s) => s.trim().length > 0 || "must not be empty"),
  Schema.maxLength(1000, { message: () => "must be at most 1000 characters" }),
)

/** An idempotency reference: 1–128 characters, no control characters; unique per holder. */
export const Reference = Schema.String.pipe(
  Schema.filter((s) => {
    if (s.length < 1 || s.length > 128) return "must be 1–128 characters"
    // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
    return !/[\u0000-\u001f\u007f]/.test(s) || "must not contain control characters"
  }),
  Schema.annotations({ identifier: "Reference" }),
)
