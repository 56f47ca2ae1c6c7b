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
 * Each rule below is one function returning `true` or what is wrong, used by its schema's filter
 * and by the engine's fast input checks (`fastInput.ts`) alike, so the two cannot drift apart.
 */

/** The id rule: 1–128 code points, no `/`, whitespace or control characters. */
export const idIssue = (s: string): true | string => {
  // Code points: a string of at most 128 UTF-16 units holds at most 128 of them, so only longer
  // strings are counted.
  const length = s.length <= 128 ? (s.length === 0 ? 0 : 1) : [...s].length
  if (length < 1) return "must not be empty"
  if (length > 128) return `must be at most 128 characters, got ${length}`
  if (forbidden.test(s)) return "must not contain '/', whitespace or control characters"
  return true
}

/**
 * An identifier: 1–128 characters (code points), no `/`, no whitespace, no control characters.
 * BRM ids such as `0.0.0.1+-balance_group+82896` are valid.
 */
export const Id = Schema.String.pipe(
  Schema.filter(idIssue),
  Schema.annotations({ identifier: "Id", description: "1–128 characters; no '/', whitespace or control characters" }),
)

/** The change value rule: a non-zero safe integer. */
export const changeValueIssue = (v: number): true | string =>
  (Number.isSafeInteger(v) && v !== 0) || "must be a non-zero safe integer (minor units)"

/** A change of credit in a currency's minor unit: a non-zero safe integer (positive adds credit). */
export const ChangeValue = Schema.Number.pipe(
  Schema.filter(changeValueIssue),
  Schema.annotations({ identifier: "ChangeValue" }),
)

/** The longest reason, in UTF-16 units (as `maxLength` counts). */
export const MAX_REASON_LENGTH = 1000

/** The reason rule (its length limit is the schema's `maxLength`, {@link MAX_REASON_LENGTH}, stated for OpenAPI too). */
export const reasonIssue = (s: string): true | string => s.trim().length > 0 || "must not be empty"

/** Reason text: non-empty (not only whitespace), at most 1,000 characters. */
export const Reason = Schema.String.pipe(
  Schema.filter(reasonIssue),
  Schema.maxLength(MAX_REASON_LENGTH, { message: () => `must be at most ${MAX_REASON_LENGTH} characters` }),
)

/** The reference rule: 1–128 characters, no control characters. */
export const referenceIssue = (s: string): true | string => {
  if (s.length < 1 || s.length > 128) return "must be 1–128 characters"
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  return !/[\u0000-\u001f\u007f]/.test(s) || "must not contain control characters"
}

/** An idempotency reference: 1–128 characters, no control characters; unique per holder. */
export const Reference = Schema.String.pipe(
  Schema.filter(referenceIssue),
  Schema.annotations({ identifier: "Reference" }),
)

/** The lock key rule: 1–256 characters (the engine then compares its hash). */
export const lockKeyIssue = (key: string): true | string =>
  (key.length >= 1 && key.length <= 256) || "must be 1–256 characters"

/** A lock key as a caller hands it in. Messages never echo the value: a lock key is a secret, and error details get logged. */
export const LockKeyText = Schema.String.annotations({ message: () => "must be a string" }).pipe(
  Schema.filter(lockKeyIssue),
)
